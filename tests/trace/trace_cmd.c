/* trace_cmd.c: the trace commands (a table of name → handler) and their argument parsing. A
 * handler writes its output to e->out; a malformed command (unknown name, bad or missing
 * argument) is reported through err and stops the script. Errors the core returns (a dropped
 * proposal, ...) are output: "error: <raft_strerror>". The commands are listed in README.md. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/trace/trace.h"

#define ULL(x) ((unsigned long long)(x))

typedef struct tcmd_ctx {
  tenv *e;
  const tscript_block *b;
  char *err;
  size_t errlen;
} tcmd_ctx;

static bool fail(tcmd_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(tcmd_ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, c->errlen, fmt, ap);
  va_end(ap);
  return false;
}

static bool parse_u64(const char *s, uint64_t *v) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno || *end || s[0] == '-') return false;
  *v = x;
  return true;
}

/* Positional arguments (no '=') counted, and every key=value checked against allowed (a
 * space-separated list; NULL = none). */
static bool check_args(tcmd_ctx *c, size_t min_pos, size_t max_pos, const char *allowed) {
  size_t pos = 0;
  for (size_t i = 0; i < c->b->n_args; i++) {
    const tscript_arg *a = &c->b->args[i];
    if (!a->val) {
      pos++;
      continue;
    }
    bool ok = false;
    size_t kl = strlen(a->key);
    for (const char *p = allowed; p && *p && !ok;) {
      const char *w = strchr(p, ' ');
      size_t n = w ? (size_t)(w - p) : strlen(p);
      ok = n == kl && memcmp(p, a->key, n) == 0;
      p = w ? w + 1 : p + n;
    }
    if (!ok) return fail(c, "unknown argument '%s=' for %s", a->key, c->b->cmd);
  }
  if (pos < min_pos || pos > max_pos) {
    if (min_pos == max_pos) return fail(c, "%s takes %zu positional argument(s)", c->b->cmd, min_pos);
    return fail(c, "%s takes %zu to %zu positional arguments", c->b->cmd, min_pos, max_pos);
  }
  return true;
}

/* The k-th positional argument, or NULL. */
static const char *pos_arg(tcmd_ctx *c, size_t k) {
  for (size_t i = 0; i < c->b->n_args; i++)
    if (!c->b->args[i].val && k-- == 0) return c->b->args[i].key;
  return NULL;
}

static const char *named(tcmd_ctx *c, const char *key) {
  for (size_t i = 0; i < c->b->n_args; i++)
    if (c->b->args[i].val && strcmp(c->b->args[i].key, key) == 0) return c->b->args[i].val;
  return NULL;
}

static bool named_u64(tcmd_ctx *c, const char *key, uint64_t *v) {
  const char *s = named(c, key);
  if (!s) return true; /* keep the default */
  if (!parse_u64(s, v)) return fail(c, "%s=%s: not a number", key, s);
  return true;
}

static bool named_bool(tcmd_ctx *c, const char *key, bool *v) {
  const char *s = named(c, key);
  if (!s) return true;
  if (strcmp(s, "true") == 0) *v = true;
  else if (strcmp(s, "false") == 0) *v = false;
  else return fail(c, "%s=%s: expected true or false", key, s);
  return true;
}

/* A node id: an existing node (up or down). */
static bool node_id(tcmd_ctx *c, const char *s, uint64_t *id) {
  if (!parse_u64(s, id) || *id == 0 || *id > c->e->n)
    return fail(c, "'%s' is not a node (nodes are 1..%zu)", s ? s : "", c->e->n);
  return true;
}

/* A node id that is up. */
static bool live_id(tcmd_ctx *c, const char *s, uint64_t *id) {
  if (!node_id(c, s, id)) return false;
  if (!tenv_live(c->e, *id)) return fail(c, "node %s is down", s);
  return true;
}

static raft *live_raft(tcmd_ctx *c, size_t k, uint64_t *id) {
  return live_id(c, pos_arg(c, k), id) ? tenv_live(c->e, *id)->r : NULL;
}

static void result(tcmd_ctx *c, int rc) {
  if (rc != RAFT_OK) tb_printf(c->e->out, "error: %s\n", raft_strerror(rc));
}

/* ---- commands ---- */

/* add-nodes <n> [voters=(1,2,3)] [index=K] [pre-vote=b] [check-quorum=b] [election=T]
 *           [heartbeat=H] [max-msg-size=B] [max-inflight=N] [max-uncommitted=B] [seed=S] */
static bool cmd_add_nodes(tcmd_ctx *c) {
  if (!check_args(c, 1, 1, "voters index pre-vote check-quorum election heartbeat "
                           "max-msg-size max-inflight max-uncommitted seed"))
    return false;
  uint64_t k, index = 0, election = 10, heartbeat = 1, max_msg = UINT64_MAX, inflight = 256,
              uncommitted = 0, seed = 1;
  raft_config cfg = {0};
  if (!parse_u64(pos_arg(c, 0), &k) || k == 0 || c->e->n + k > TENV_MAX_NODES)
    return fail(c, "add-nodes: a count of 1..%zu expected", TENV_MAX_NODES - c->e->n);
  if (!named_u64(c, "index", &index) || !named_u64(c, "election", &election) ||
      !named_u64(c, "heartbeat", &heartbeat) || !named_u64(c, "max-msg-size", &max_msg) ||
      !named_u64(c, "max-inflight", &inflight) || !named_u64(c, "max-uncommitted", &uncommitted) ||
      !named_u64(c, "seed", &seed) || !named_bool(c, "pre-vote", &cfg.pre_vote) ||
      !named_bool(c, "check-quorum", &cfg.check_quorum))
    return false;
  uint64_t voters[RAFT_MAX_VOTERS];
  size_t nv = 0;
  const char *vs = named(c, "voters");
  if (vs) {
    char *copy = strdup(vs), *save = NULL;
    if (!copy) abort();
    for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
      if (nv == RAFT_MAX_VOTERS || !parse_u64(t, &voters[nv]) || voters[nv] == 0) {
        free(copy);
        return fail(c, "voters=(%s): a list of up to %d node ids expected", vs, RAFT_MAX_VOTERS);
      }
      nv++;
    }
    free(copy);
  } else {
    for (uint64_t i = 1; i <= k; i++) voters[nv++] = c->e->n + i;
  }
  if (index > 0 && nv == 0) return fail(c, "index= needs voters");
  cfg.election_tick = (unsigned)election;
  cfg.heartbeat_tick = (unsigned)heartbeat;
  cfg.max_size_per_msg = max_msg;
  cfg.max_inflight_msgs = (unsigned)inflight;
  cfg.max_uncommitted_size = uncommitted;
  cfg.seed = seed;
  for (uint64_t i = 0; i < k; i++) {
    int rc = tenv_add_node(c->e, &cfg, voters, nv, index);
    if (rc != RAFT_OK) return fail(c, "add-nodes: %s", raft_strerror(rc));
  }
  return true;
}

static bool cmd_campaign(tcmd_ctx *c) {
  uint64_t id;
  raft *r;
  if (!check_args(c, 1, 1, NULL) || !(r = live_raft(c, 0, &id))) return false;
  result(c, raft_campaign(r));
  return true;
}

/* propose <id> <data> */
static bool cmd_propose(tcmd_ctx *c) {
  uint64_t id;
  raft *r;
  if (!check_args(c, 2, 2, NULL) || !(r = live_raft(c, 0, &id))) return false;
  const char *data = pos_arg(c, 1);
  result(c, raft_propose(r, data, strlen(data)));
  return true;
}

/* propose-conf-change <id> add=<node> | remove=<node> */
static bool cmd_propose_conf_change(tcmd_ctx *c) {
  uint64_t id, node = 0;
  raft *r;
  if (!check_args(c, 1, 1, "add remove") || !(r = live_raft(c, 0, &id))) return false;
  raft_conf_change cc = {0};
  if (named(c, "add") && !named(c, "remove")) {
    cc.type = RAFT_CONF_ADD_NODE;
    if (!named_u64(c, "add", &node)) return false;
  } else if (named(c, "remove") && !named(c, "add")) {
    cc.type = RAFT_CONF_REMOVE_NODE;
    if (!named_u64(c, "remove", &node)) return false;
  } else {
    return fail(c, "propose-conf-change: exactly one of add=<id>, remove=<id> expected");
  }
  if (node == 0) return fail(c, "propose-conf-change: a non-zero node id expected");
  cc.node_id = node;
  result(c, raft_propose_conf_change(r, &cc));
  return true;
}

/* tick <id> [count] */
static bool cmd_tick(tcmd_ctx *c) {
  uint64_t id, n = 1;
  if (!check_args(c, 1, 2, NULL) || !live_id(c, pos_arg(c, 0), &id)) return false;
  if (pos_arg(c, 1) && !parse_u64(pos_arg(c, 1), &n)) return fail(c, "tick: bad count");
  tenv_tick(c->e, id, (unsigned)n);
  return true;
}

static bool cmd_tick_heartbeat(tcmd_ctx *c) {
  uint64_t id;
  if (!check_args(c, 1, 1, NULL) || !live_id(c, pos_arg(c, 0), &id)) return false;
  tenv_tick(c->e, id, tenv_live(c->e, id)->cfg.heartbeat_tick);
  return true;
}

static bool cmd_tick_election(tcmd_ctx *c) {
  uint64_t id;
  if (!check_args(c, 1, 1, NULL) || !live_id(c, pos_arg(c, 0), &id)) return false;
  tenv_tick_election(c->e, id);
  return true;
}

/* process-ready / deliver-msgs <id>... (no id: every node) */
static bool for_ids(tcmd_ctx *c, bool (*fn)(tenv *, uint64_t)) {
  if (!check_args(c, 0, TSCRIPT_MAX_ARGS, NULL)) return false;
  uint64_t ids[TSCRIPT_MAX_ARGS];
  size_t n = 0;
  for (const char *a; (a = pos_arg(c, n)) != NULL; n++)
    if (!node_id(c, a, &ids[n])) return false;
  if (n == 0)
    for (uint64_t id = 1; id <= c->e->n; id++) fn(c->e, id);
  for (size_t i = 0; i < n; i++) fn(c->e, ids[i]);
  return true;
}

static bool cmd_process_ready(tcmd_ctx *c) { return for_ids(c, tenv_process_ready); }
static bool cmd_deliver_msgs(tcmd_ctx *c) { return for_ids(c, tenv_deliver); }

static bool cmd_stabilize(tcmd_ctx *c) {
  if (!check_args(c, 0, 0, NULL)) return false;
  if (!tenv_stabilize(c->e)) tb_printf(c->e->out, "error: no quiet state after 1000 rounds\n");
  return true;
}

static bool cmd_isolate(tcmd_ctx *c) {
  uint64_t id;
  if (!check_args(c, 1, 1, NULL) || !node_id(c, pos_arg(c, 0), &id)) return false;
  for (uint64_t j = 1; j <= TENV_MAX_NODES; j++)
    if (j != id) c->e->cut[id][j] = c->e->cut[j][id] = true;
  return true;
}

/* cut <a> <b>: both directions */
static bool cmd_cut(tcmd_ctx *c) {
  uint64_t a, b;
  if (!check_args(c, 2, 2, NULL) || !node_id(c, pos_arg(c, 0), &a) ||
      !node_id(c, pos_arg(c, 1), &b))
    return false;
  c->e->cut[a][b] = c->e->cut[b][a] = true;
  return true;
}

static bool cmd_heal(tcmd_ctx *c) {
  if (!check_args(c, 0, 0, NULL)) return false;
  memset(c->e->cut, 0, sizeof c->e->cut);
  return true;
}

static bool cmd_crash(tcmd_ctx *c) {
  uint64_t id;
  if (!check_args(c, 1, 1, NULL) || !live_id(c, pos_arg(c, 0), &id)) return false;
  tenv_crash(c->e, id);
  return true;
}

static bool cmd_restart(tcmd_ctx *c) {
  uint64_t id;
  if (!check_args(c, 1, 1, NULL) || !node_id(c, pos_arg(c, 0), &id)) return false;
  if (tenv_live(c->e, id)) return fail(c, "restart: node %llu is up (crash it first)", ULL(id));
  result(c, tenv_restart(c->e, id));
  return true;
}

/* compact <id> <index> */
static bool cmd_compact(tcmd_ctx *c) {
  uint64_t id, index;
  if (!check_args(c, 2, 2, NULL) || !live_id(c, pos_arg(c, 0), &id)) return false;
  if (!parse_u64(pos_arg(c, 1), &index)) return fail(c, "compact: bad index");
  result(c, tenv_compact(c->e, id, index));
  return true;
}

/* transfer-leadership from=<id> to=<id> */
static bool cmd_transfer(tcmd_ctx *c) {
  uint64_t from = 0, to = 0;
  if (!check_args(c, 0, 0, "from to") || !named_u64(c, "from", &from) || !named_u64(c, "to", &to))
    return false;
  char s[32];
  snprintf(s, sizeof s, "%llu", ULL(from));
  if (!live_id(c, s, &from)) return false;
  result(c, raft_transfer_leader(tenv_live(c->e, from)->r, to));
  return true;
}

/* read-index <id> <context> */
static bool cmd_read_index(tcmd_ctx *c) {
  uint64_t id;
  raft *r;
  if (!check_args(c, 2, 2, NULL) || !(r = live_raft(c, 0, &id))) return false;
  const char *ctx = pos_arg(c, 1);
  result(c, raft_read_index(r, ctx, strlen(ctx)));
  return true;
}

static bool cmd_raft_log(tcmd_ctx *c) {
  uint64_t id;
  if (!check_args(c, 1, 1, NULL) || !node_id(c, pos_arg(c, 0), &id)) return false;
  tenv_print_log(c->e, id);
  return true;
}

static bool cmd_raft_state(tcmd_ctx *c) {
  if (!check_args(c, 0, 0, NULL)) return false;
  for (uint64_t id = 1; id <= c->e->n; id++) tenv_print_state(c->e, id, false);
  return true;
}

static bool cmd_status(tcmd_ctx *c) {
  uint64_t id;
  if (!check_args(c, 1, 1, NULL) || !node_id(c, pos_arg(c, 0), &id)) return false;
  tenv_print_state(c->e, id, true);
  return true;
}

/* log-level debug|info|warn|error|none: the least core log level shown (default info) */
static bool cmd_log_level(tcmd_ctx *c) {
  static const char *const names[] = {"debug", "info", "warn", "error", "none"};
  if (!check_args(c, 1, 1, NULL)) return false;
  for (int i = 0; i < 5; i++)
    if (strcmp(pos_arg(c, 0), names[i]) == 0) {
      c->e->log_level = i;
      return true;
    }
  return fail(c, "log-level: one of debug, info, warn, error, none expected");
}

static const struct {
  const char *name;
  bool (*fn)(tcmd_ctx *c);
} tcmd_table[] = {
    {"add-nodes", cmd_add_nodes},
    {"campaign", cmd_campaign},
    {"propose", cmd_propose},
    {"propose-conf-change", cmd_propose_conf_change},
    {"tick", cmd_tick},
    {"tick-heartbeat", cmd_tick_heartbeat},
    {"tick-election", cmd_tick_election},
    {"process-ready", cmd_process_ready},
    {"deliver-msgs", cmd_deliver_msgs},
    {"stabilize", cmd_stabilize},
    {"isolate", cmd_isolate},
    {"cut", cmd_cut},
    {"heal", cmd_heal},
    {"crash", cmd_crash},
    {"restart", cmd_restart},
    {"compact", cmd_compact},
    {"transfer-leadership", cmd_transfer},
    {"read-index", cmd_read_index},
    {"raft-log", cmd_raft_log},
    {"raft-state", cmd_raft_state},
    {"status", cmd_status},
    {"log-level", cmd_log_level},
};

bool tcmd_run(tenv *e, const tscript_block *b, char *err, size_t errlen) {
  tcmd_ctx c = {e, b, err, errlen};
  for (size_t i = 0; i < sizeof tcmd_table / sizeof tcmd_table[0]; i++)
    if (strcmp(tcmd_table[i].name, b->cmd) == 0) {
      size_t before = e->out->len;
      if (!tcmd_table[i].fn(&c)) return false;
      if (e->out->len == before) tb_printf(e->out, "ok\n");
      return true;
    }
  return fail(&c, "unknown command '%s'", b->cmd);
}
