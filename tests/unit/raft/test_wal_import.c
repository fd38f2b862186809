/* Unit tests of wal_import: a LevelDB raft log of an older version (ldb_storage) moved into a
 * WAL. Hard state, configuration, compaction point and every entry (type, term, bytes) must
 * come across; the LevelDB is gone afterwards; a leftover DIR.tmp of an import cut short is
 * replaced; a missing LevelDB is an error. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "raft/storage/ldb_storage.h"
#include "raft/storage/wal_import.h"
#include "raft/storage/wal_storage.h"

typedef struct paths {
  char root[64], ldb[128], wal[128], tmp[128];
} paths;

static void paths_init(paths *p) {
  snprintf(p->root, sizeof p->root, "/tmp/quorum-walimp-XXXXXX");
  assert_non_null(mkdtemp(p->root));
  snprintf(p->ldb, sizeof p->ldb, "%s/log", p->root);
  snprintf(p->wal, sizeof p->wal, "%s/wal", p->root);
  snprintf(p->tmp, sizeof p->tmp, "%s/wal.tmp", p->root);
}

static void rm_rf(const char *path) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  assert_int_equal(system(cmd), 0);
}

/* Entry i of the test log: term 1 + i/40, type 1 every 17th, i % 5 bytes of data. */
static raft_entry make_entry(uint64_t i, uint8_t *buf) {
  size_t len = i % 5 == 0 ? 0 : (size_t)(i % 7) * 13;
  for (size_t k = 0; k < len; k++) buf[k] = (uint8_t)(i * 31 + k);
  return (raft_entry){.index = i,
                      .term = 1 + i / 40,
                      .type = i % 17 == 0 ? RAFT_ENTRY_CONF_CHANGE : RAFT_ENTRY_NORMAL,
                      .data = {len ? buf : NULL, len}};
}

/* Writes entries 1..last into a LevelDB log, compacts through `compact`, and stores a hard
 * state and configuration. */
static void make_ldb(const char *path, uint64_t last, uint64_t compact) {
  raft_ldb *l;
  char err[256];
  assert_int_equal(raft_ldb_open(&l, path, true, false, err, sizeof err), 0);
  uint8_t buf[128];
  for (uint64_t i = 1; i <= last; i++) {
    raft_entry e = make_entry(i, buf);
    assert_int_equal(raft_ldb_save(l, NULL, NULL, &e, 1, false), 0);
  }
  raft_hard_state hs = {.term = 1 + last / 40, .vote = 7, .commit = last - 3};
  assert_int_equal(raft_ldb_save(l, &hs, NULL, NULL, 0, true), 0);
  raft_conf_state cs = {.voters = {3, 7, 9}, .n_voters = 3};
  assert_int_equal(raft_ldb_set_conf(l, &cs), 0);
  while (compact && raft_ldb_compact(l, compact) == 1) {
  }
  raft_ldb_close(l);
}

static void check_wal(const char *path, uint64_t first, uint64_t last) {
  raft_wal *w;
  char err[256];
  assert_int_equal(raft_wal_open(&w, path, &(raft_wal_opts){.sync = false}, err, sizeof err), 0);
  assert_int_equal(raft_wal_first_index(w), first);
  assert_int_equal(raft_wal_last_index(w), last);
  raft_hard_state hs;
  raft_conf_state cs;
  raft_wal_initial(w, &hs, &cs);
  assert_int_equal(hs.term, 1 + last / 40);
  assert_int_equal(hs.vote, 7);
  assert_int_equal(hs.commit, last - 3);
  assert_int_equal(cs.n_voters, 3);
  assert_int_equal(cs.voters[0], 3);
  assert_int_equal(cs.voters[2], 9);
  const raft_storage *st = raft_wal_storage(w);
  uint64_t t;
  assert_int_equal(st->term(st->ctx, first - 1, &t), 0);
  assert_int_equal(t, first == 1 ? 0 : 1 + (first - 1) / 40);
  raft_entry *ents;
  size_t n;
  assert_int_equal(st->entries(st->ctx, first, last + 1, UINT64_MAX, &ents, &n), 0);
  assert_int_equal(n, last - first + 1);
  uint8_t buf[128];
  for (size_t k = 0; k < n; k++) {
    raft_entry want = make_entry(first + k, buf);
    assert_int_equal(ents[k].index, want.index);
    assert_int_equal(ents[k].term, want.term);
    assert_int_equal(ents[k].type, want.type);
    assert_int_equal(ents[k].data.len, want.data.len);
    if (want.data.len) assert_memory_equal(ents[k].data.base, want.data.base, want.data.len);
  }
  raft_entries_free(ents, n);
  raft_wal_close(w);
}

static void import_whole_log(void **state) {
  (void)state;
  paths p;
  paths_init(&p);
  make_ldb(p.ldb, 300, 0);
  char err[256] = "";
  assert_int_equal(raft_wal_import_ldb(p.ldb, p.wal, err, sizeof err), 0);
  struct stat st;
  assert_int_not_equal(stat(p.ldb, &st), 0); /* the LevelDB is gone */
  assert_int_not_equal(stat(p.tmp, &st), 0);
  check_wal(p.wal, 1, 300);
  rm_rf(p.root);
}

static void import_compacted_log(void **state) {
  (void)state;
  paths p;
  paths_init(&p);
  make_ldb(p.ldb, 5000, 4500);
  char err[256] = "";
  assert_int_equal(raft_wal_import_ldb(p.ldb, p.wal, err, sizeof err), 0);
  check_wal(p.wal, 4501, 5000);
  rm_rf(p.root);
}

/* An import cut short left wal.tmp behind (here: a stray file in it): it is replaced. */
static void import_replaces_leftover_tmp(void **state) {
  (void)state;
  paths p;
  paths_init(&p);
  make_ldb(p.ldb, 50, 0);
  assert_int_equal(mkdir(p.tmp, 0755), 0);
  char stray[192];
  snprintf(stray, sizeof stray, "%s/0000000000000001.wal", p.tmp);
  FILE *f = fopen(stray, "w");
  assert_non_null(f);
  fputs("half an import", f);
  fclose(f);
  char err[256] = "";
  assert_int_equal(raft_wal_import_ldb(p.ldb, p.wal, err, sizeof err), 0);
  check_wal(p.wal, 1, 50);
  rm_rf(p.root);
}

/* A missing LevelDB is an error with a message, and no WAL appears. */
static void import_missing_ldb_fails(void **state) {
  (void)state;
  paths p;
  paths_init(&p);
  char err[256] = "";
  assert_true(raft_wal_import_ldb(p.ldb, p.wal, err, sizeof err) < 0);
  assert_true(strlen(err) > 0);
  struct stat st;
  assert_int_not_equal(stat(p.wal, &st), 0);
  rm_rf(p.root);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(import_whole_log),
      cmocka_unit_test(import_compacted_log),
      cmocka_unit_test(import_replaces_leftover_tmp),
      cmocka_unit_test(import_missing_ldb_fails),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
