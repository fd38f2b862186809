/* driver: runs one fuzz target without libFuzzer (gcc builds, ctest): every seed once, then
 * `runs` inputs made by mutating seeds with a seeded xorshift generator (bit flips, byte
 * sets, interesting values, insertions, deletions, duplications, truncations and splices of
 * two seeds). Deterministic: the same --seed and --runs replay the same inputs, and
 * --dump N FILE writes input N (0-based, seeds first) instead of running, to replay a crash.
 *
 *   fuzz_x [--runs N] [--seed S] [--dump N FILE] [--write-seeds DIR] [FILE...]
 *
 * FILEs are extra seeds (e.g. a libFuzzer corpus). --write-seeds writes the target's seeds to
 * DIR as files, the starting corpus of a libFuzzer run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#define MAX_INPUT (1u << 16)

typedef struct seeds {
  uint8_t **v;
  size_t *len;
  size_t n, cap;
} seeds;

static void add_seed(void *ctx, const uint8_t *data, size_t len) {
  seeds *s = ctx;
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 16;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    s->len = realloc(s->len, s->cap * sizeof *s->len);
    if (!s->v || !s->len) abort();
  }
  s->v[s->n] = malloc(len ? len : 1);
  if (!s->v[s->n]) abort();
  if (len) memcpy(s->v[s->n], data, len);
  s->len[s->n++] = len;
}

static void seeds_free(seeds *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  free(s->len);
}

static int read_file(const char *path, seeds *s) {
  FILE *f = fopen(path, "rb");
  if (!f) return -errno;
  uint8_t *buf = malloc(MAX_INPUT);
  if (!buf) abort();
  size_t n = fread(buf, 1, MAX_INPUT, f);
  fclose(f);
  add_seed(s, buf, n);
  free(buf);
  return 0;
}

static uint64_t next(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static size_t below(uint64_t *x, size_t n) { return n ? (size_t)(next(x) % n) : 0; }

/* One mutated input from the seeds into out (MAX_INPUT bytes); returns its length. */
static size_t mutate(const seeds *s, uint64_t *x, uint8_t *out) {
  static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc2, 0xc3, 0xc4,
                                        0xc5, 0xcc, 0xcf, 0xd9, 0xdc, 0xdd, 0xde, 0x90, 0x9f,
                                        0x0f, '"', '\\', '{', '}', '[', ']', ':', ',', '%',
                                        '&', '=', '/', '.', 'u'};
  size_t k = below(x, s->n);
  size_t len = s->len[k];
  memcpy(out, s->v[k], len);
  size_t steps = 1 + below(x, 4);
  for (size_t i = 0; i < steps; i++) {
    switch (below(x, 9)) {
      case 0: /* flip a bit */
        if (len) out[below(x, len)] ^= (uint8_t)(1u << below(x, 8));
        break;
      case 1: /* set a byte */
        if (len) out[below(x, len)] = (uint8_t)next(x);
        break;
      case 2: /* an interesting value */
        if (len) out[below(x, len)] = interesting[below(x, sizeof interesting)];
        break;
      case 3: { /* insert random bytes */
        size_t at = below(x, len + 1), n = 1 + below(x, 8);
        if (len + n > MAX_INPUT) break;
        memmove(out + at + n, out + at, len - at);
        for (size_t j = 0; j < n; j++) out[at + j] = (uint8_t)next(x);
        len += n;
        break;
      }
      case 4: { /* delete a range */
        if (!len) break;
        size_t at = below(x, len), n = 1 + below(x, len - at);
        memmove(out + at, out + at + n, len - at - n);
        len -= n;
        break;
      }
      case 5: { /* duplicate a range */
        if (!len) break;
        size_t at = below(x, len), n = 1 + below(x, len - at);
        if (len + n > MAX_INPUT) break;
        memmove(out + at + n, out + at, len - at);
        len += n;
        break;
      }
      case 6: /* truncate */
        len = below(x, len + 1);
        break;
      case 7: { /* splice: the tail of another seed */
        size_t o = below(x, s->n), from = below(x, s->len[o] + 1), at = below(x, len + 1);
        size_t n = s->len[o] - from;
        if (at + n > MAX_INPUT) n = MAX_INPUT - at;
        memcpy(out + at, s->v[o] + from, n);
        len = at + n;
        break;
      }
      default: { /* overwrite a byte with one of the neighbouring values */
        if (len) {
          size_t at = below(x, len);
          out[at] = (uint8_t)(out[at] + (below(x, 2) ? 1 : -1));
        }
        break;
      }
    }
  }
  return len;
}

static int write_seeds(const seeds *s, const char *dir) {
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) return -errno;
  for (size_t i = 0; i < s->n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%03zu", dir, i);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->v[i], 1, s->len[i], f) != s->len[i]) {
      if (f) fclose(f);
      return -EIO;
    }
    fclose(f);
  }
  return 0;
}

int main(int argc, char **argv) {
  unsigned long long runs = 10000, seed = 1, dump_at = 0;
  const char *dump_file = NULL, *seed_dir = NULL;
  seeds s = {0};
  fuzz_seeds(add_seed, &s);
  add_seed(&s, (const uint8_t *)"", 0);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = strtoull(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      seed = strtoull(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--dump") == 0 && i + 2 < argc) {
      dump_at = strtoull(argv[++i], NULL, 10);
      dump_file = argv[++i];
    } else if (strcmp(argv[i], "--write-seeds") == 0 && i + 1 < argc) {
      seed_dir = argv[++i];
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "usage: %s [--runs N] [--seed S] [--dump N FILE] [--write-seeds DIR] [FILE...]\n",
              argv[0]);
      seeds_free(&s);
      return 2;
    } else if (read_file(argv[i], &s) != 0) {
      fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[i]);
      seeds_free(&s);
      return 2;
    }
  }
  if (seed_dir) {
    int e = write_seeds(&s, seed_dir);
    if (e) fprintf(stderr, "%s: cannot write seeds to %s: %s\n", argv[0], seed_dir, strerror(-e));
    else printf("%s: %zu seeds written to %s\n", argv[0], s.n, seed_dir);
    seeds_free(&s);
    return e ? 1 : 0;
  }
  uint8_t *buf = malloc(MAX_INPUT);
  if (!buf) abort();
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  unsigned long long total = s.n + runs;
  for (unsigned long long i = 0; i < total; i++) {
    size_t len;
    if (i < s.n) {
      len = s.len[i];
      memcpy(buf, s.v[i], len);
    } else {
      len = mutate(&s, &x, buf);
    }
    if (dump_file && i == dump_at) {
      FILE *f = fopen(dump_file, "wb");
      int ok = f && fwrite(buf, 1, len, f) == len;
      if (f) fclose(f);
      printf("%s: input %llu (%zu bytes) %s %s\n", argv[0], i, len, ok ? "written to" : "NOT written to",
             dump_file);
      seeds_free(&s);
      free(buf);
      return ok ? 0 : 1;
    }
    /* a copy of exactly len bytes, so that ASan sees any read past the input */
    uint8_t *in = malloc(len ? len : 1);
    if (!in) abort();
    memcpy(in, buf, len);
    LLVMFuzzerTestOneInput(in, len);
    free(in);
  }
  printf("%s: %zu seeds and %llu mutated inputs (seed %llu): no crash, every property held\n",
         argv[0], s.n, runs, seed);
  seeds_free(&s);
  free(buf);
  return 0;
}
