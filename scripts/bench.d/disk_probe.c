/* disk_probe: what one synced log append costs on this machine's disk, and what other work
 * does to that cost, for scripts/bench --disk.
 *
 * A "sync" is what a write-ahead log does per group commit: append SIZE bytes to a file and
 * fdatasync it. Scenarios (each N syncs; mean, median, p90 and p99 per sync in microseconds):
 *   alone          one syncer, nothing else running
 *   busy1, busy2   one syncer while 1 or 2 threads spin on the CPU (a loaded server and its
 *                  load generator); on a virtual disk whose emulation shares the host's cores
 *                  with the vCPUs, busy vCPUs make every flush slower
 *   syncers2/3     2 or 3 syncers at once, each on its own file, starting together every round
 *                  (the members of a 2- or 3-member cluster syncing the same batch)
 * Output: one JSON object per scenario on stdout. Files go to DIR (default: the cwd).
 *
 * Build: cc -O2 -pthread -o disk_probe disk_probe.c
 * Usage: disk_probe [-d DIR] [-n SYNCS] [-s SIZE] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct probe {
  const char *dir;
  int n, size;
  int syncers;
  pthread_barrier_t round;
  atomic_int stop_spin;
  double *lat; /* syncers * n, microseconds */
} probe;

typedef struct syncer_arg {
  probe *p;
  int id;
} syncer_arg;

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void *spin_main(void *arg) {
  probe *p = arg;
  volatile unsigned long x = 0;
  while (!atomic_load_explicit(&p->stop_spin, memory_order_relaxed)) x++;
  return NULL;
}

static void *syncer_main(void *arg) {
  syncer_arg *a = arg;
  probe *p = a->p;
  char path[4096];
  snprintf(path, sizeof path, "%s/disk_probe.%d.%d", p->dir, (int)getpid(), a->id);
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0600);
  if (fd < 0) {
    fprintf(stderr, "disk_probe: %s: %s\n", path, strerror(errno));
    exit(2);
  }
  char *buf = calloc(1, (size_t)p->size);
  if (!buf) exit(2);
  for (int i = 0; i < p->n; i++) {
    if (p->syncers > 1) pthread_barrier_wait(&p->round);
    double t0 = now_us();
    if (write(fd, buf, (size_t)p->size) != p->size || fdatasync(fd) != 0) {
      fprintf(stderr, "disk_probe: write/fdatasync: %s\n", strerror(errno));
      exit(2);
    }
    p->lat[a->id * p->n + i] = now_us() - t0;
  }
  free(buf);
  close(fd);
  unlink(path);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void run(probe *p, const char *name, int syncers, int spinners) {
  pthread_t sp[8], sy[8];
  syncer_arg args[8];
  p->syncers = syncers;
  p->lat = calloc((size_t)syncers * (size_t)p->n, sizeof *p->lat);
  if (!p->lat) exit(2);
  pthread_barrier_init(&p->round, NULL, (unsigned)syncers);
  atomic_store(&p->stop_spin, 0);
  for (int i = 0; i < spinners; i++) pthread_create(&sp[i], NULL, spin_main, p);
  if (spinners) usleep(100000);
  double t0 = now_us();
  for (int i = 0; i < syncers; i++) {
    args[i] = (syncer_arg){p, i};
    pthread_create(&sy[i], NULL, syncer_main, &args[i]);
  }
  for (int i = 0; i < syncers; i++) pthread_join(sy[i], NULL);
  double el = now_us() - t0;
  atomic_store(&p->stop_spin, 1);
  for (int i = 0; i < spinners; i++) pthread_join(sp[i], NULL);
  size_t total = (size_t)syncers * (size_t)p->n;
  double sum = 0;
  for (size_t i = 0; i < total; i++) sum += p->lat[i];
  qsort(p->lat, total, sizeof *p->lat, cmp_double);
  printf("{\"scenario\":\"%s\",\"syncers\":%d,\"spinners\":%d,\"size\":%d,\"syncs\":%zu,"
         "\"mean_us\":%.0f,\"p50_us\":%.0f,\"p90_us\":%.0f,\"p99_us\":%.0f,\"syncs_per_s\":%.0f}\n",
         name, syncers, spinners, p->size, total, sum / (double)total, p->lat[total / 2],
         p->lat[total * 9 / 10], p->lat[total * 99 / 100], total / (el / 1e6));
  fflush(stdout);
  pthread_barrier_destroy(&p->round);
  free(p->lat);
}

int main(int argc, char **argv) {
  probe p = {.dir = ".", .n = 1000, .size = 256};
  int c;
  while ((c = getopt(argc, argv, "d:n:s:")) != -1) {
    if (c == 'd') p.dir = optarg;
    else if (c == 'n') p.n = atoi(optarg);
    else if (c == 's') p.size = atoi(optarg);
    else {
      fprintf(stderr, "usage: disk_probe [-d DIR] [-n SYNCS] [-s SIZE]\n");
      return 2;
    }
  }
  if (p.n < 10 || p.size < 1) {
    fprintf(stderr, "disk_probe: -n must be >= 10 and -s >= 1\n");
    return 2;
  }
  run(&p, "alone", 1, 0);
  run(&p, "busy1", 1, 1);
  run(&p, "busy2", 1, 2);
  run(&p, "syncers2", 2, 0);
  run(&p, "syncers3", 3, 0);
  return 0;
}
