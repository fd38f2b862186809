/* Unit tests of raft/transport/transport*.c over real libuv TCP on loopback (free ports picked
 * by the kernel): every message type crosses between transports on one loop, per-peer order
 * holds, a restarted peer is reconnected, a full queue drops and reports unreachable, bad
 * inbound connections (garbage, oversized, wrong cluster, wrong version, wrong addressee) are
 * closed with one log line while other peers are served, a multi-MiB snapshot arrives whole and
 * is acknowledged, the drop hook partitions a pair, reconnects back off, a callback may stop
 * the transport, and stop leaves a loop that closes cleanly. Member i listens on and connects
 * from 127.0.0.i, as the daemons do in the multi-process tests (the fixture:
 * transport_fixture.h; TLS: test_raft_transport_tls.c). */
#include <dirent.h>

#include "tests/unit/raft/transport_fixture.h"

/* Every wire type, with entries, snapshot and context where set, arrives exactly, in order. */
static void test_every_type_arrives(void **state) {
  fixture *f = *state;
  start_cluster(f, 2);
  static uint8_t d1[] = "set /k v", d2[] = {0, 0xff, 0x90}, ctx[] = "ctx";
  static uint8_t sdata[3000];
  for (size_t i = 0; i < sizeof sdata; i++) sdata[i] = (uint8_t)(i * 31);
  raft_entry ents[2] = {{.term = 3, .index = 11, .type = RAFT_ENTRY_NORMAL, .data = {d1, 8}},
                        {.term = 3, .index = 12, .type = RAFT_ENTRY_CONF_CHANGE, .data = {d2, 3}}};
  raft_snapshot snap = {.meta = {.index = 10, .term = 2, .conf = {.voters = {1, 2, 3}, .n_voters = 3}},
                        .data = {sdata, sizeof sdata}};
  raft_message sent[RAFT_MSG_TYPE_MAX];
  size_t n = 0;
  for (uint8_t t = RAFT_MSG_PROP; t < RAFT_MSG_TYPE_MAX; t++) {
    raft_message m = {.type = t, .from = 1, .to = 2, .term = 3, .log_term = 2, .index = 10,
                      .commit = 9, .reject = t % 2, .reject_hint = 7, .reject_hint_term = 1,
                      .context = {ctx, 3}};
    if (t == RAFT_MSG_SNAP) m.snapshot = &snap;
    else m.entries = ents, m.n_entries = 2;
    sent[n++] = m;
  }
  /* The snapshot goes on its own connection, so compare it apart from the ordered stream. */
  for (size_t i = 0; i < n; i++) assert_int_equal(raft_transport_send(f->n[1].t, &sent[i]), 0);
  wait_got(f, 2, n);
  assert_int_equal(f->n[2].n_got, n);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (sent[i].type == RAFT_MSG_SNAP) continue;
    while (f->n[2].got[k]->type == RAFT_MSG_SNAP) k++;
    assert_message(&sent[i], f->n[2].got[k++]);
  }
  for (size_t i = 0; i < n; i++)
    if (f->n[2].got[i]->type == RAFT_MSG_SNAP) assert_message(&sent[RAFT_MSG_SNAP - RAFT_MSG_PROP], f->n[2].got[i]);
  /* The snapshot is acknowledged; counters follow what crossed. */
  snap_wait w = {1, 2};
  assert_true(run_until(f, snap_reported, &w, 5000));
  assert_int_equal(f->n[1].snap_ok[2], 1);
  raft_transport_stats st;
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st), 0);
  assert_true(st.connected);
  assert_int_equal(st.msgs_sent, n - 1);
  assert_int_equal(st.append_sent, 1);
  assert_int_equal(st.snapshots_sent, 1);
  assert_int_equal(st.send_failures, 0);
  assert_int_equal(st.queued_bytes, 0);
  assert_int_equal(raft_transport_peer_stats(f->n[2].t, 1, &st), 0);
  assert_int_equal(st.msgs_recv, n);
  assert_int_equal(st.append_recv, 1);
  assert_true(st.bytes_recv > sizeof sdata);
  /* And back the other way. */
  raft_message hb = heartbeat(2, 1, 3);
  hb.type = RAFT_MSG_HEARTBEAT_RESP;
  assert_int_equal(raft_transport_send(f->n[2].t, &hb), 0);
  wait_got(f, 1, 1);
  assert_message(&hb, f->n[1].got[0]);
  assert_int_equal(f->n[1].warnings + f->n[2].warnings, 0);
}

/* Messages from two senders to one receiver keep each sender's order. */
static void test_order_per_peer(void **state) {
  fixture *f = *state;
  start_cluster(f, 3);
  uint8_t data[100];
  memset(data, 'x', sizeof data);
  for (uint64_t i = 1; i <= 2000; i++) {
    raft_entry e = {.term = 1, .index = i, .data = {data, sizeof data}};
    raft_message m = {.type = RAFT_MSG_APP, .to = 2, .term = 1, .index = i - 1, .entries = &e,
                      .n_entries = 1};
    m.from = 1;
    assert_int_equal(raft_transport_send(f->n[1].t, &m), 0);
    m.from = 3;
    assert_int_equal(raft_transport_send(f->n[3].t, &m), 0);
  }
  wait_got(f, 2, 4000);
  uint64_t next[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < f->n[2].n_got; i++) {
    const raft_message *m = f->n[2].got[i];
    assert_true(m->from == 1 || m->from == 3);
    assert_true(m->index == next[m->from]);
    assert_true(m->entries[0].index == next[m->from] + 1);
    next[m->from]++;
  }
  assert_true(next[1] == 2000 && next[3] == 2000);
}

/* Corked, the messages to a connected peer wait; uncorked, they go in one write and arrive
 * whole and in order (and a peer not yet connected gets its messages the usual way). */
static void test_cork_holds_then_writes_in_order(void **state) {
  fixture *f = *state;
  start_cluster(f, 3);
  raft_message hb = heartbeat(1, 2, 1);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0); /* connects 1 -> 2 */
  wait_got(f, 2, 1);
  raft_transport_stats st0, st1;
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st0), 0);
  uint8_t data[300];
  memset(data, 'c', sizeof data);
  raft_transport_cork(f->n[1].t);
  for (uint64_t i = 1; i <= 40; i++) {
    raft_entry e = {.term = 1, .index = i, .data = {data, sizeof data}};
    raft_message m = {.type = RAFT_MSG_APP, .from = 1, .to = 2, .term = 1, .index = i - 1,
                      .entries = &e, .n_entries = 1};
    assert_int_equal(raft_transport_send(f->n[1].t, &m), 0);
  }
  raft_message hb3 = heartbeat(1, 3, 1); /* to a peer with no connection yet */
  assert_int_equal(raft_transport_send(f->n[1].t, &hb3), 0);
  run_until(f, never, NULL, 50); /* nothing leaves while corked */
  assert_int_equal(f->n[2].n_got, 1);
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st1), 0);
  assert_int_equal(st1.msgs_sent, st0.msgs_sent);
  raft_transport_uncork(f->n[1].t);
  wait_got(f, 2, 41);
  wait_got(f, 3, 1);
  for (size_t i = 1; i < f->n[2].n_got; i++) {
    const raft_message *m = f->n[2].got[i];
    assert_int_equal(m->type, RAFT_MSG_APP);
    assert_int_equal(m->index, i - 1);
    assert_int_equal(m->entries[0].data.len, sizeof data);
  }
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st1), 0);
  assert_int_equal(st1.msgs_sent, st0.msgs_sent + 40);
  assert_int_equal(st1.append_sent, st0.append_sent + 40);
}

typedef struct resend {
  int from, to;
  uint64_t last_ms;
} resend;

/* Sends a heartbeat every 20 ms until `to` has received one. */
static bool resend_until_got(fixture *f, void *arg) {
  resend *r = arg;
  if (f->n[r->to].n_got > 0) return true;
  uint64_t now = uv_now(&f->loop);
  if (now - r->last_ms >= 20) {
    r->last_ms = now;
    raft_message hb = heartbeat((uint64_t)r->from, (uint64_t)r->to, 5);
    raft_transport_send(f->n[r->from].t, &hb);
  }
  return false;
}

static bool unreachable_seen(fixture *f, void *arg) {
  (void)arg;
  return f->n[1].unreachable[2] > 0;
}

/* A peer that stops and starts again on the same port is reached again; the loss in between is
 * reported as unreachable. */
static void test_reconnect_after_restart(void **state) {
  fixture *f = *state;
  start_cluster(f, 2);
  raft_message hb = heartbeat(1, 2, 1);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0);
  wait_got(f, 2, 1);
  /* Stop member 2 and let its handles close. */
  char addr2[64];
  addr_of(&f->n[2], addr2, sizeof addr2);
  raft_transport_stop(f->n[2].t);
  f->n[2].t = NULL;
  run_for(f, 50);
  assert_true(run_until(f, unreachable_seen, NULL, 3000));
  raft_transport_stats st;
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st), 0);
  assert_false(st.connected);
  /* Sends while it is down fail (and are reported), they do not pile up. */
  for (int i = 0; i < 5; i++) {
    raft_transport_send(f->n[1].t, &hb);
    run_for(f, 30);
  }
  assert_true(f->n[1].unreachable[2] >= 2);
  node_clear(&f->n[2]);
  f->n[2].cfg.listen_addr = addr2;
  node_start(f, 2);
  resend r = {1, 2, 0};
  assert_true(run_until(f, resend_until_got, &r, 5000));
  assert_int_equal(f->n[2].got[0]->type, RAFT_MSG_HEARTBEAT);
  assert_true(f->n[2].got[0]->from == 1);
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st), 0);
  assert_true(st.connected);
  assert_true(st.send_failures >= 1);
}

/* With a small queue, sends past the bound are refused with -ENOBUFS and reported unreachable
 * once; the queued ones arrive, in order. */
static void test_queue_bound_drops(void **state) {
  fixture *f = *state;
  f->n[1].cfg.max_queue_bytes = 2000;
  start_cluster(f, 2);
  raft_codec_buf b = {0};
  raft_message hb = heartbeat(1, 2, 1);
  assert_int_equal(raft_codec_encode_message(&b, &hb), 0);
  size_t frame = b.len, fits = 2000 / frame;
  free(b.base);
  int ok = 0, full = 0;
  for (uint64_t i = 1; i <= 3 * fits; i++) {
    hb.term = 1; /* same size every time */
    hb.commit = i;
    int rc = raft_transport_send(f->n[1].t, &hb);
    if (rc == 0) ok++;
    else {
      assert_int_equal(rc, -ENOBUFS);
      full++;
    }
  }
  assert_int_equal(ok, (int)fits);
  assert_int_equal(full, (int)(2 * fits));
  raft_transport_stats st;
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st), 0);
  assert_int_equal(st.queued_bytes, fits * frame);
  assert_int_equal(st.send_failures, 2 * fits);
  assert_int_equal(f->n[1].unreachable[2], 0); /* never from inside send */
  wait_got(f, 2, fits);
  run_for(f, 50);
  assert_int_equal(f->n[2].n_got, fits);
  for (size_t i = 0; i < fits; i++) assert_true(f->n[2].got[i]->commit == i + 1);
  assert_int_equal(f->n[1].unreachable[2], 1);
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st), 0);
  assert_int_equal(st.queued_bytes, 0);
  assert_int_equal(st.msgs_sent, fits);
}

/* A message larger than max_frame is refused without touching the connection. */
static void test_oversized_send_refused(void **state) {
  fixture *f = *state;
  f->n[1].cfg.max_frame = 64 * 1024;
  f->n[1].cfg.snap_chunk = 32 * 1024;
  start_cluster(f, 2);
  static uint8_t big[70 * 1024];
  raft_entry e = {.term = 1, .index = 1, .data = {big, sizeof big}};
  raft_message m = {.type = RAFT_MSG_APP, .from = 1, .to = 2, .term = 1, .entries = &e,
                    .n_entries = 1};
  assert_int_equal(raft_transport_send(f->n[1].t, &m), -EMSGSIZE);
  assert_int_equal(f->n[1].warnings, 1);
  raft_message hb = heartbeat(1, 2, 1);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0);
  wait_got(f, 2, 1);
  assert_int_equal(f->n[1].unreachable[2], 1);
  /* Unknown peers and local types are refused too. */
  hb.to = 9;
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), -ENOENT);
  hb.to = 2;
  hb.type = RAFT_MSG_HUP;
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), -EINVAL);
}

/* ---- raw connections for the bad-input tests ---- */

static int raw_connect(const node *n) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n->port)};
  assert_int_equal(inet_pton(AF_INET, n->host, &a.sin_addr), 1);
  assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(fcntl(s, F_SETFL, O_NONBLOCK), 0);
  return s;
}

static void raw_write(int s, const void *p, size_t n) {
  assert_int_equal(write(s, p, n), (ssize_t)n);
}

static bool raw_closed(fixture *f, void *arg) {
  (void)f;
  int s = *(int *)arg;
  char c;
  ssize_t r = recv(s, &c, 1, 0);
  return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void raw_handshake(int s, uint64_t cluster, uint64_t from, uint64_t to) {
  raft_codec_buf b = {0};
  raft_codec_handshake h = {.cluster_id = cluster, .from = from, .to = to};
  assert_int_equal(raft_codec_encode_handshake(&b, &h), 0);
  raw_write(s, b.base, b.len);
  free(b.base);
}

/* Serves 1 -> 2 traffic once more and checks it still arrives. */
static void assert_still_serving(fixture *f, uint64_t term) {
  size_t before = f->n[2].n_got;
  raft_message hb = heartbeat(1, 2, term);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0);
  wait_got(f, 2, before + 1);
  assert_true(f->n[2].got[before]->term == term);
}

/* Each kind of bad inbound connection is closed with exactly one warning, and member 2 keeps
 * serving member 1 throughout. */
static void test_bad_inbound_closed(void **state) {
  fixture *f = *state;
  f->n[2].cfg.max_frame = 1u << 20;
  f->n[2].cfg.snap_chunk = 512u << 10;
  start_cluster(f, 2);
  assert_still_serving(f, 1);
  const char *expect[] = {"malformed frame", "oversized frame", "of cluster", "protocol version",
                          "addressed to member", "on the connection of", "expected a handshake",
                          "empty frame"};
  for (int kind = 0; kind < 8; kind++) {
    unsigned warnings = f->n[2].warnings;
    int s = raw_connect(&f->n[2]);
    if (kind == 0) { /* garbage payload */
      static const uint8_t g[] = {0, 0, 0, 6, 0xc1, 0xff, 0x00, 0x93, 0x01, 0x02};
      raw_write(s, g, sizeof g);
    } else if (kind == 1) { /* announces 256 MiB */
      static const uint8_t g[] = {0x10, 0, 0, 0, 0x93};
      raw_write(s, g, sizeof g);
    } else if (kind == 2) {
      raw_handshake(s, CLUSTER + 1, 1, 2);
    } else if (kind == 3) { /* [9, 1, cluster, 1, 2, 0]: version 9 */
      msgpack_sbuffer sb;
      msgpack_packer pk;
      msgpack_sbuffer_init(&sb);
      msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
      msgpack_pack_array(&pk, 6);
      msgpack_pack_uint8(&pk, 9);
      msgpack_pack_uint8(&pk, RAFT_CODEC_HANDSHAKE);
      msgpack_pack_uint64(&pk, CLUSTER);
      msgpack_pack_uint64(&pk, 1);
      msgpack_pack_uint64(&pk, 2);
      msgpack_pack_uint8(&pk, 0);
      uint8_t h[4] = {0, 0, 0, (uint8_t)sb.size};
      raw_write(s, h, 4);
      raw_write(s, sb.data, sb.size);
      msgpack_sbuffer_destroy(&sb);
    } else if (kind == 4) {
      raw_handshake(s, CLUSTER, 1, 3);
    } else if (kind == 5) { /* good handshake as 3, then a message claiming to be from 1 */
      raw_handshake(s, CLUSTER, 3, 2);
      raft_codec_buf b = {0};
      raft_message hb = heartbeat(1, 2, 1);
      assert_int_equal(raft_codec_encode_message(&b, &hb), 0);
      raw_write(s, b.base, b.len);
      free(b.base);
    } else if (kind == 6) { /* a message before any handshake */
      raft_codec_buf b = {0};
      raft_message hb = heartbeat(1, 2, 1);
      assert_int_equal(raft_codec_encode_message(&b, &hb), 0);
      raw_write(s, b.base, b.len);
      free(b.base);
    } else {
      static const uint8_t g[] = {0, 0, 0, 0};
      raw_write(s, g, sizeof g);
    }
    assert_true(run_until(f, raw_closed, &s, 3000));
    close(s);
    assert_int_equal(f->n[2].warnings, warnings + 1);
    assert_non_null(strstr(f->n[2].last_log, expect[kind]));
    assert_still_serving(f, 10 + (uint64_t)kind);
  }
  /* A good raw peer (member 3, unknown to 2's peer table) is served after all that. */
  int s = raw_connect(&f->n[2]);
  raw_handshake(s, CLUSTER, 3, 2);
  raft_codec_buf b = {0};
  raft_message hb = heartbeat(3, 2, 77);
  assert_int_equal(raft_codec_encode_message(&b, &hb), 0);
  raw_write(s, b.base, b.len);
  free(b.base);
  size_t before = f->n[2].n_got;
  wait_got(f, 2, before + 1);
  assert_true(f->n[2].got[before]->from == 3 && f->n[2].got[before]->term == 77);
  close(s);
  /* Nothing bad reached member 2's raft. */
  for (size_t i = 0; i < f->n[2].n_got; i++) assert_true(f->n[2].got[i]->to == 2);
}

/* A 5 MiB snapshot arrives whole as one MSG_SNAP (in 1 MiB chunks on its own connection) while
 * heartbeats keep flowing, and the sender is told it succeeded. */
static void test_snapshot_several_mib(void **state) {
  fixture *f = *state;
  start_cluster(f, 2);
  size_t len = 5u * 1024 * 1024 + 123;
  uint8_t *data = malloc(len);
  uint64_t x = 88172645463325252ULL;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    data[i] = (uint8_t)x;
  }
  raft_snapshot snap = {.meta = {.index = 5000, .term = 7, .conf = {.voters = {1, 2}, .n_voters = 2}},
                        .data = {data, len}};
  raft_message m = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 7, .snapshot = &snap};
  assert_int_equal(raft_transport_send(f->n[1].t, &m), 0);
  /* The caller keeps ownership: wipe our copy at once. */
  uint8_t *want = malloc(len);
  memcpy(want, data, len);
  memset(data, 0, len);
  /* A second snapshot while the first is in flight fails at once (reported from the loop). */
  assert_int_equal(raft_transport_send(f->n[1].t, &m), -EBUSY);
  raft_message hb = heartbeat(1, 2, 7);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0);
  snap_wait w = {1, 2};
  assert_true(run_until(f, snap_reported, &w, 10000));
  assert_int_equal(f->n[1].snap_fail[2], 1); /* the refused second one */
  f->n[1].snap_fail[2] = 0;
  assert_true(run_until(f, snap_reported, &w, 10000));
  assert_int_equal(f->n[1].snap_ok[2], 1);
  assert_int_equal(f->n[1].snap_fail[2], 0);
  assert_int_equal(f->n[2].n_got, 2);
  const raft_message *got = NULL;
  for (size_t i = 0; i < 2; i++)
    if (f->n[2].got[i]->type == RAFT_MSG_SNAP) got = f->n[2].got[i];
  assert_non_null(got);
  snap.data.base = want;
  assert_message(&m, got);
  raft_transport_stats st;
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st), 0);
  assert_int_equal(st.snapshots_sent, 1);
  assert_int_equal(st.snapshot_failures, 1);
  assert_true(st.bytes_sent > len);
  free(data);
  free(want);
}

/* A movable snapshot (the core's own, malloc'd) is taken by the transport, not copied: the
 * message is left without data at once; the receiver gets it whole and movable (its core may
 * keep the reassembly buffer). */
static void test_snapshot_movable_taken(void **state) {
  fixture *f = *state;
  start_cluster(f, 2);
  size_t len = 2u * 1024 * 1024 + 7;
  uint8_t *data = malloc(len), *want = malloc(len);
  assert_true(data && want);
  for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(i * 31 + 7);
  memcpy(want, data, len);
  raft_snapshot snap = {.meta = {.index = 900, .term = 3, .conf = {.voters = {1, 2}, .n_voters = 2}},
                        .data = {data, len}};
  raft_message m = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 3, .snapshot = &snap,
                    .snapshot_movable = true};
  assert_int_equal(raft_transport_send(f->n[1].t, &m), 0);
  assert_null(snap.data.base); /* (the transport frees it when done) */
  assert_int_equal(snap.data.len, 0);
  snap_wait w = {1, 2};
  assert_true(run_until(f, snap_reported, &w, 10000));
  assert_int_equal(f->n[1].snap_ok[2], 1);
  assert_int_equal(f->n[2].n_got, 1);
  const raft_message *got = f->n[2].got[0];
  assert_int_equal(got->type, RAFT_MSG_SNAP);
  assert_true(got->snapshot_movable);
  assert_int_equal(got->snapshot->data.len, len);
  assert_memory_equal(got->snapshot->data.base, want, len);
  free(want);
}

/* Files in dir (not . and ..). */
static int files_in(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* With a snapshot dir, a snapshot received goes to a nameless file there, and is delivered
 * mapped from it (with a release that unmaps it), whole; nothing is left in the dir. Where the
 * dir cannot take it, it is received in memory, with one warning. */
static void test_snapshot_spooled_to_a_file(void **state) {
  fixture *f = *state;
  char dir[] = "/tmp/quorum-unit-spool-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char missing[64];
  snprintf(missing, sizeof missing, "%s/no-such-dir", dir);
  f->n[2].cfg.snapshot_dir = dir;
  f->n[3].cfg.snapshot_dir = missing;
  start_cluster(f, 3);
  size_t len = 3u * 1024 * 1024 + 11;
  uint8_t *want = malloc(len);
  assert_non_null(want);
  for (size_t i = 0; i < len; i++) want[i] = (uint8_t)(i * 131 + 5);
  raft_snapshot snap = {.meta = {.index = 700, .term = 4, .conf = {.voters = {1, 2}, .n_voters = 2}},
                        .data = {want, len}};
  raft_message m = {.type = RAFT_MSG_SNAP, .from = 1, .to = 3, .term = 4, .snapshot = &snap};
  assert_int_equal(raft_transport_send(f->n[1].t, &m), 0);
  snap_wait w = {1, 3};
  assert_true(run_until(f, snap_reported, &w, 10000));
  assert_int_equal(f->n[1].snap_ok[3], 1);
  assert_int_equal(f->n[3].n_got, 1);
  assert_null(f->n[3].got[0]->snapshot->release);
  assert_memory_equal(f->n[3].got[0]->snapshot->data.base, want, len);
  assert_int_equal(f->n[3].warnings, 1);
  char expect[256];
  snprintf(expect, sizeof expect, "raft transport 3: cannot spool a snapshot of 3145739 bytes "
           "to %s (No such file or directory): it is received in memory", missing);
  assert_string_equal(f->n[3].last_log, expect);

  m.to = 2;
  w.peer = 2;
  assert_int_equal(raft_transport_send(f->n[1].t, &m), 0);
  assert_true(run_until(f, snap_reported, &w, 10000));
  assert_int_equal(f->n[1].snap_ok[2], 1);
  assert_int_equal(f->n[2].n_got, 1);
  const raft_message *got = f->n[2].got[0];
  assert_int_equal(got->type, RAFT_MSG_SNAP);
  assert_non_null(got->snapshot->release); /* (the copy kept the pointer: it was mapped) */
  assert_int_equal(got->snapshot->data.len, len);
  assert_memory_equal(got->snapshot->data.base, want, len);
  assert_int_equal(files_in(dir), 0);
  free(want);
  rmdir(dir);
}

/* A snapshot to a peer nobody listens for fails, and so does one larger than the receiver's
 * limit (the receiver closes the connection with a warning). */
static void test_snapshot_failures(void **state) {
  fixture *f = *state;
  f->n[2].cfg.max_snapshot = 1000;
  start_cluster(f, 2);
  /* Member 3's address, with nothing listening there. */
  node_start(f, 3);
  char a3[64];
  addr_of(&f->n[3], a3, sizeof a3);
  raft_transport_stop(f->n[3].t);
  f->n[3].t = NULL;
  run_for(f, 20);
  assert_int_equal(raft_transport_add_peer(f->n[1].t, 3, a3), 0);
  uint8_t data[2000] = {1};
  raft_snapshot snap = {.meta = {.index = 3, .term = 1}, .data = {data, sizeof data}};
  raft_message m = {.type = RAFT_MSG_SNAP, .from = 1, .to = 3, .term = 1, .snapshot = &snap};
  assert_int_equal(raft_transport_send(f->n[1].t, &m), 0);
  snap_wait w = {1, 3};
  assert_true(run_until(f, snap_reported, &w, 5000));
  assert_int_equal(f->n[1].snap_fail[3], 1);
  m.to = 2;
  assert_int_equal(raft_transport_send(f->n[1].t, &m), 0);
  w.peer = 2;
  assert_true(run_until(f, snap_reported, &w, 5000));
  assert_int_equal(f->n[1].snap_fail[2], 1);
  assert_int_equal(f->n[2].n_got, 0);
  assert_int_equal(f->n[2].warnings, 1);
  assert_non_null(strstr(f->n[2].last_log, "over the limit"));
  /* A small one goes through afterwards. */
  snap.data.len = 1000;
  assert_int_equal(raft_transport_send(f->n[1].t, &m), 0);
  f->n[1].snap_fail[2] = 0;
  assert_true(run_until(f, snap_reported, &w, 5000));
  assert_int_equal(f->n[1].snap_ok[2], 1);
  assert_int_equal(f->n[2].n_got, 1);
}

/* The drop hook on member 1 for member 2 cuts both directions at member 1, and heals. */
static bool told(fixture *f, void *arg) {
  (void)f;
  return ((node *)arg)->told_removed > 0;
}

/* A member the receiver knows was removed gets REMOVED for its handshake: nothing it sends is
 * delivered, it is told (on_removed), and a member told about another id is not. */
static void test_removed_member_is_told(void **state) {
  fixture *f = *state;
  start_cluster(f, 3);
  f->n[2].removed_peer = 1;
  raft_message hb = heartbeat(1, 2, 4);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0);
  assert_true(run_until(f, told, &f->n[1], 5000));
  assert_int_equal(f->n[1].told_removed, 1);
  assert_int_equal(f->n[2].n_got, 0);
  assert_true(f->n[2].warnings >= 1); /* "member 1 was removed ...: telling it so" */
  /* Member 3 still talks to 2, and 1 to 3. */
  raft_message hb3 = heartbeat(3, 2, 4);
  assert_int_equal(raft_transport_send(f->n[3].t, &hb3), 0);
  wait_got(f, 2, 1);
  raft_message hb13 = heartbeat(1, 3, 4);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb13), 0);
  wait_got(f, 3, 1);
  assert_int_equal(f->n[1].told_removed, 1);
  assert_int_equal(f->n[3].told_removed + f->n[2].told_removed, 0);
}

static void test_drop_hook(void **state) {
  fixture *f = *state;
  start_cluster(f, 3);
  assert_int_equal(raft_transport_set_drop(f->n[1].t, 2, true), 0);
  assert_int_equal(raft_transport_set_drop(f->n[1].t, 9, true), -ENOENT);
  raft_message a = heartbeat(1, 2, 1), b = heartbeat(2, 1, 1), c = heartbeat(3, 1, 1);
  for (int i = 0; i < 10; i++) {
    assert_int_equal(raft_transport_send(f->n[1].t, &a), 0);
    assert_int_equal(raft_transport_send(f->n[2].t, &b), 0);
    assert_int_equal(raft_transport_send(f->n[3].t, &c), 0);
  }
  wait_got(f, 1, 10);
  run_for(f, 200);
  assert_int_equal(f->n[2].n_got, 0);
  assert_int_equal(f->n[1].n_got, 10); /* only member 3's */
  for (size_t i = 0; i < 10; i++) assert_true(f->n[1].got[i]->from == 3);
  /* A snapshot to a dropped peer fails, and is reported failed as over a cut network (the
   * core replicates to the peer again only after the report). */
  raft_snapshot snap = {.meta = {.index = 3, .term = 1}};
  raft_message s = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 1, .snapshot = &snap};
  assert_int_equal(raft_transport_send(f->n[1].t, &s), 0);
  snap_wait w = {1, 2};
  assert_true(run_until(f, snap_reported, &w, 1000));
  assert_int_equal(f->n[1].snap_fail[2], 1);
  assert_int_equal(f->n[1].snap_ok[2], 0);
  /* So does one lost by drop_next. */
  assert_int_equal(raft_transport_set_drop(f->n[1].t, 2, false), 0);
  assert_int_equal(raft_transport_drop_next(f->n[1].t, 2, RAFT_MSG_SNAP, 1), 0);
  f->n[1].snap_fail[2] = 0;
  assert_int_equal(raft_transport_send(f->n[1].t, &s), 0);
  assert_true(run_until(f, snap_reported, &w, 1000));
  assert_int_equal(f->n[1].snap_fail[2], 1);
  run_for(f, 100);
  assert_int_equal(f->n[2].n_got, 0);
  assert_int_equal(raft_transport_set_drop(f->n[1].t, 2, false), 0);
  node_clear(&f->n[1]);
  assert_int_equal(raft_transport_send(f->n[1].t, &a), 0);
  assert_int_equal(raft_transport_send(f->n[2].t, &b), 0);
  wait_got(f, 2, 1);
  wait_got(f, 1, 1);
  assert_true(f->n[1].got[0]->from == 2);
}

/* drop_next loses the next messages of one type to one peer, one way, and nothing else: the
 * connection stays up, other types and other peers still get through, in order. */
static void test_drop_next_hook(void **state) {
  fixture *f = *state;
  start_cluster(f, 3);
  assert_int_equal(raft_transport_drop_next(f->n[1].t, 9, RAFT_MSG_HEARTBEAT, 1), -ENOENT);
  assert_int_equal(raft_transport_drop_next(f->n[1].t, 2, RAFT_MSG_HUP, 1), -EINVAL);
  assert_int_equal(raft_transport_drop_next(f->n[1].t, 2, RAFT_MSG_HEARTBEAT, 2), 0);
  raft_message resp = heartbeat(1, 2, 7);
  resp.type = RAFT_MSG_HEARTBEAT_RESP;
  for (uint64_t term = 1; term <= 3; term++) {
    raft_message hb = heartbeat(1, 2, term);
    assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0);
    if (term == 1) assert_int_equal(raft_transport_send(f->n[1].t, &resp), 0);
  }
  raft_message hb3 = heartbeat(1, 3, 5), back = heartbeat(2, 1, 6);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb3), 0);
  assert_int_equal(raft_transport_send(f->n[2].t, &back), 0);
  wait_got(f, 2, 2);
  wait_got(f, 3, 1);
  wait_got(f, 1, 1);
  run_for(f, 200);
  assert_int_equal(f->n[2].n_got, 2); /* the response, then the third heartbeat */
  assert_int_equal(f->n[2].got[0]->type, RAFT_MSG_HEARTBEAT_RESP);
  assert_true(f->n[2].got[1]->type == RAFT_MSG_HEARTBEAT && f->n[2].got[1]->term == 3);
  assert_true(f->n[3].n_got == 1 && f->n[3].got[0]->term == 5);
  assert_true(f->n[1].n_got == 1 && f->n[1].got[0]->term == 6);
  assert_true(f->n[1].warnings >= 2); /* one line per message dropped */
  /* Spent: the next heartbeat arrives. */
  raft_message hb4 = heartbeat(1, 2, 4);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb4), 0);
  wait_got(f, 2, 3);
  assert_true(f->n[2].got[2]->term == 4);
}

typedef struct gone_wait {
  int node, peer;
} gone_wait;

static bool gone_reported(fixture *f, void *arg) {
  gone_wait *w = arg;
  return f->n[w->node].gone[w->peer] > 0;
}

static bool peer_connected(fixture *f, void *arg) {
  gone_wait *w = arg;
  raft_transport_stats st;
  return raft_transport_peer_stats(f->n[w->node].t, (uint64_t)w->peer, &st) == 0 && st.connected;
}

/* A member whose process is gone: the connection to it breaks, the probe that follows is
 * refused, and on_peer_gone names it, once, though nothing was being sent to it. A break with
 * the peer still listening is probed back up, with no report; a peer never reached (refused
 * from the first connect) is only unreachable. */
static void test_peer_gone_when_its_address_refuses(void **state) {
  fixture *f = *state;
  start_cluster(f, 3);
  /* 2 answers 1 (a follower answering its leader): 2's connection to 1 is up and has carried */
  raft_message resp = heartbeat(2, 1, 1);
  resp.type = RAFT_MSG_HEARTBEAT_RESP;
  assert_int_equal(raft_transport_send(f->n[2].t, &resp), 0);
  wait_got(f, 1, 1);
  /* broken while 1 listens: reopened by the probe, nothing reported */
  assert_int_equal(raft_transport_break(f->n[2].t, 1), 0);
  gone_wait up = {2, 1};
  run_for(f, 20);
  assert_false(peer_connected(f, &up));
  assert_true(run_until(f, peer_connected, &up, 2000));
  run_for(f, 200);
  assert_int_equal(f->n[2].gone[1], 0);
  /* a peer never reached is unreachable, not gone */
  raft_transport_stop(f->n[3].t);
  f->n[3].t = NULL;
  raft_message hb3 = heartbeat(2, 3, 1);
  assert_int_equal(raft_transport_send(f->n[2].t, &hb3), 0);
  run_for(f, 300);
  assert_true(f->n[2].unreachable[3] > 0);
  assert_int_equal(f->n[2].gone[3], 0);
  /* 1 stops (its listener and connections close, as when its process dies): the connection
   * the probe reopened breaks, the next probe is refused */
  assert_int_equal(raft_transport_send(f->n[2].t, &resp), 0);
  wait_got(f, 1, 2);
  raft_transport_stop(f->n[1].t);
  f->n[1].t = NULL;
  gone_wait w = {2, 1};
  assert_true(run_until(f, gone_reported, &w, 3000));
  run_for(f, 500);
  assert_int_equal(f->n[2].gone[1], 1);
  assert_int_equal(f->n[2].gone[3], 0);
}

/* A member that comes back connects to its peers at once (raft_transport_connect), and a
 * peer whose connection to it waited out a long backoff reconnects on seeing it: what it had
 * to send arrives in milliseconds, not when the backoff ends. */
static void test_a_peer_coming_back_is_reconnected_at_once(void **state) {
  fixture *f = *state;
  f->n[1].cfg.backoff_min_ms = 1500; /* one failed connect: the next try 1.5 s later, then 3 */
  f->n[1].cfg.backoff_max_ms = 8000;
  start_cluster(f, 2);
  assert_int_equal(raft_transport_connect(f->n[1].t, 9), -ENOENT);
  raft_message hb = heartbeat(1, 2, 1);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0);
  wait_got(f, 2, 1);
  int port2 = f->n[2].port;
  raft_transport_stop(f->n[2].t); /* 2 goes down */
  f->n[2].t = NULL;
  gone_wait w = {1, 2};
  assert_true(run_until(f, gone_reported, &w, 4000)); /* (the probe, refused) */
  raft_message hb2 = heartbeat(1, 2, 2);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb2), 0); /* waits for the backoff */
  run_for(f, 100);
  /* 2 comes back on its port and connects to 1 with nothing to send */
  snprintf(f->n[2].listen, sizeof f->n[2].listen, "127.0.0.2:%d", port2);
  node_clear(&f->n[2]);
  node_start(f, 2);
  char a1[64];
  addr_of(&f->n[1], a1, sizeof a1);
  assert_int_equal(raft_transport_add_peer(f->n[2].t, 1, a1), 0);
  uv_update_time(&f->loop);
  uint64_t t0 = uv_now(&f->loop);
  assert_int_equal(raft_transport_connect(f->n[2].t, 1), 0);
  assert_int_equal(raft_transport_connect(f->n[2].t, 1), 0); /* (one connection: no-op) */
  wait_got(f, 2, 1);
  assert_true(uv_now(&f->loop) - t0 < 1000);
  assert_int_equal(f->n[2].got[0]->term, 2);
  assert_int_equal(f->n[1].n_got, 0); /* 2's connection carried no message */
  raft_transport_stats st;
  assert_int_equal(raft_transport_peer_stats(f->n[2].t, 1, &st), 0);
  assert_true(st.connected);
}

/* The heartbeat round trip is measured; remove_peer and update_peer take effect; stopping with
 * traffic in flight leaves nothing behind (the teardown closes the loop; ASan checks leaks). */
static void test_rtt_update_remove_stop(void **state) {
  fixture *f = *state;
  start_cluster(f, 3);
  raft_message hb = heartbeat(1, 2, 1);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0);
  wait_got(f, 2, 1);
  raft_message resp = heartbeat(2, 1, 1);
  resp.type = RAFT_MSG_HEARTBEAT_RESP;
  assert_int_equal(raft_transport_send(f->n[2].t, &resp), 0);
  wait_got(f, 1, 1);
  raft_transport_stats st;
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st), 0);
  assert_true(st.rtt_us > 0 && st.rtt_us < 5000000);
  /* Point member 1's entry for 2 at member 3's port: messages now land on 3, which refuses the
   * handshake (addressed to 2) with a warning. The connection that carried the heartbeat is
   * opened once more (the probe after a break), refused the same way, and then left alone. */
  char a3[64];
  addr_of(&f->n[3], a3, sizeof a3);
  assert_int_equal(raft_transport_update_peer(f->n[1].t, 2, a3), 0);
  assert_int_equal(raft_transport_update_peer(f->n[1].t, 9, a3), -ENOENT);
  assert_int_equal(raft_transport_update_peer(f->n[1].t, 2, "nonsense"), -EINVAL);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0);
  run_for(f, 600);
  assert_int_equal(f->n[3].warnings, 2);
  assert_non_null(strstr(f->n[3].last_log, "addressed to member 2"));
  assert_int_equal(f->n[3].n_got, 0);
  assert_int_equal(raft_transport_remove_peer(f->n[1].t, 2), 0);
  assert_int_equal(raft_transport_remove_peer(f->n[1].t, 2), -ENOENT);
  assert_int_equal(raft_transport_send(f->n[1].t, &hb), -ENOENT);
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st), -ENOENT);
  assert_int_equal(raft_transport_add_peer(f->n[1].t, 3, a3), -EEXIST);
  assert_int_equal(raft_transport_add_peer(f->n[1].t, 1, a3), -EINVAL);
  /* Leave traffic and a snapshot in flight for the teardown's stop. */
  static uint8_t big[3u << 20];
  raft_snapshot snap = {.meta = {.index = 3, .term = 1}, .data = {big, sizeof big}};
  raft_message s = {.type = RAFT_MSG_SNAP, .from = 1, .to = 3, .term = 1, .snapshot = &snap};
  assert_int_equal(raft_transport_send(f->n[1].t, &s), 0);
  for (int i = 0; i < 100; i++) {
    raft_message h3 = heartbeat(1, 3, 2);
    assert_int_equal(raft_transport_send(f->n[1].t, &h3), 0);
  }
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

typedef struct pace {
  uint64_t last_ms;
  unsigned sends;
} pace;

/* Sends a heartbeat from 1 to 2 every 5 ms; never done. */
static bool keep_sending(fixture *f, void *arg) {
  pace *p = arg;
  uint64_t now = uv_now(&f->loop);
  if (now - p->last_ms >= 5) {
    p->last_ms = now;
    raft_message hb = heartbeat(1, 2, 1);
    raft_transport_send(f->n[1].t, &hb);
    p->sends++;
  }
  return false;
}

/* Connecting to a peer that is down backs off exponentially (50, 100, 200, 400 ms ...): sending
 * every 5 ms for 700 ms makes only a handful of attempts, each reported unreachable. */
static void test_backoff_spaces_attempts(void **state) {
  fixture *f = *state;
  start_cluster(f, 2);
  raft_transport_stop(f->n[2].t);
  f->n[2].t = NULL;
  run_for(f, 20);
  pace p = {0, 0};
  assert_false(run_until(f, keep_sending, &p, 700));
  assert_true(p.sends > 50);
  /* Attempts at about 0, 50, 150, 350 (and maybe 750) ms. */
  assert_true(f->n[1].unreachable[2] >= 3);
  assert_true(f->n[1].unreachable[2] <= 5);
  raft_transport_stats st;
  assert_int_equal(raft_transport_peer_stats(f->n[1].t, 2, &st), 0);
  assert_false(st.connected);
  assert_true(st.send_failures > 0);
  assert_true(st.queued_bytes <= 4u << 20);
}

/* A receiver that stops its own transport from inside on_message (with more messages and a
 * snapshot behind) neither crashes nor leaks; the sender sees the loss. */
static void test_stop_inside_callback(void **state) {
  fixture *f = *state;
  start_cluster(f, 2);
  f->n[2].stop_on_message = true;
  static uint8_t data[2u << 20];
  raft_snapshot snap = {.meta = {.index = 3, .term = 1}, .data = {data, sizeof data}};
  raft_message s = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 1, .snapshot = &snap};
  assert_int_equal(raft_transport_send(f->n[1].t, &s), 0);
  for (int i = 0; i < 50; i++) {
    raft_message hb = heartbeat(1, 2, 1);
    assert_int_equal(raft_transport_send(f->n[1].t, &hb), 0);
  }
  wait_got(f, 2, 1);
  assert_null(f->n[2].t);
  snap_wait w = {1, 2};
  assert_true(run_until(f, snap_reported, &w, 5000));
  run_for(f, 50);
  assert_int_equal(f->n[2].n_got, 1);
  assert_true(f->n[1].snap_ok[2] + f->n[1].snap_fail[2] == 1);
}

/* Addresses parse as documented; bad configs are refused. */
static void test_addresses_and_config(void **state) {
  fixture *f = *state;
  struct sockaddr_storage ss;
  assert_int_equal(raft_transport_parse_addr("127.0.0.2:2380", &ss), 0);
  assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 2380);
  assert_int_equal(raft_transport_parse_addr("localhost:1", &ss), 0);
  assert_int_equal(raft_transport_parse_addr("[::1]:7000", &ss), 0);
  assert_int_equal(ss.ss_family, AF_INET6);
  const char *bad[] = {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:70000", "host.example:1",
                       "[::1]7000", "1.2.3.4:5x", "[::1:5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(raft_transport_parse_addr(bad[i], &ss), -EINVAL);
  raft_transport_callbacks cbs = {0};
  raft_transport *t;
  raft_transport_config c = {.self_id = 0, .listen_addr = "127.0.0.1:0"};
  assert_int_equal(raft_transport_start(&f->loop, &c, &cbs, &t), -EINVAL);
  c.self_id = 1;
  c.max_frame = 1000;
  assert_int_equal(raft_transport_start(&f->loop, &c, &cbs, &t), -EINVAL);
  c.max_frame = 0;
  c.listen_addr = "nope";
  assert_int_equal(raft_transport_start(&f->loop, &c, &cbs, &t), -EINVAL);
  /* A port in use. */
  node_start(f, 1);
  char a1[64];
  addr_of(&f->n[1], a1, sizeof a1);
  c.listen_addr = a1;
  assert_int_equal(raft_transport_start(&f->loop, &c, &cbs, &t), UV_EADDRINUSE);
  assert_null(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_every_type_arrives, setup, teardown),
      cmocka_unit_test_setup_teardown(test_order_per_peer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cork_holds_then_writes_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reconnect_after_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_bound_drops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oversized_send_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_inbound_closed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_movable_taken, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_spooled_to_a_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_several_mib, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_failures, setup, teardown),
      cmocka_unit_test_setup_teardown(test_drop_hook, setup, teardown),
      cmocka_unit_test_setup_teardown(test_drop_next_hook, setup, teardown),
      cmocka_unit_test_setup_teardown(test_removed_member_is_told, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rtt_update_remove_stop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_peer_gone_when_its_address_refuses, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_peer_coming_back_is_reconnected_at_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_backoff_spaces_attempts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_inside_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_addresses_and_config, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
