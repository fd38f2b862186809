/* debug_vars: etcd's two other basic endpoints of the client port. GET /debug/vars is Go's
 * expvar page as etcd fills it (cmdline, file_descriptor_limit, memstats, raft.status); PUT
 * /config/local/log {"Level":"DEBUG"} changes the log level, with capnslog's level names. */
#include <http_parser.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <yajl/yajl_parse.h>

#include "daemon/node.h"
#include "daemon/routes.h"
#include "daemon/store_i.h"

/* Whichever allocator the daemon runs on: jemalloc's control interface (quorumd is linked
 * with it), AddressSanitizer's (the sanitizer build), else glibc's mallinfo2. Each is NULL
 * when absent. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));
extern size_t __sanitizer_get_heap_size(void) __attribute__((weak));

/* Heap bytes in use by the program and bytes the allocator holds from the system. */
static void heap_bytes(uint64_t *in_use, uint64_t *from_os) {
  *in_use = *from_os = 0;
  if (mallctl) {
    uint64_t epoch = 1;
    size_t sz = sizeof epoch, v, vl = sizeof v;
    mallctl("epoch", &epoch, &sz, &epoch, sz); /* refreshes the statistics */
    if (mallctl("stats.allocated", &v, &vl, NULL, 0) == 0) *in_use = v;
    vl = sizeof v;
    if (mallctl("stats.mapped", &v, &vl, NULL, 0) == 0) *from_os = v;
    return;
  }
  if (__sanitizer_get_current_allocated_bytes && __sanitizer_get_heap_size) {
    *in_use = __sanitizer_get_current_allocated_bytes();
    *from_os = __sanitizer_get_heap_size();
    return;
  }
  struct mallinfo2 mi = mallinfo2();
  *in_use = mi.uordblks + mi.hblkhd;
  *from_os = mi.arena + mi.hblkhd;
}

static const char *raft_state_name(uint8_t role) {
  switch (role) {
    case RAFT_LEADER: return "StateLeader";
    case RAFT_CANDIDATE: return "StateCandidate";
    case RAFT_PRE_CANDIDATE: return "StatePreCandidate";
    default: return "StateFollower";
  }
}

static const char *progress_name(uint8_t state) {
  switch (state) {
    case RAFT_PROGRESS_REPLICATE: return "StateReplicate";
    case RAFT_PROGRESS_SNAPSHOT: return "StateSnapshot";
    default: return "StateProbe";
  }
}

static void gen_hex(yajl_gen g, const char *key, uint64_t v) {
  char hex[17];
  snprintf(hex, sizeof hex, "%" PRIx64, v);
  proto_v2_gen_cstr(g, key);
  proto_v2_gen_cstr(g, hex);
}

static void gen_u64(yajl_gen g, const char *key, uint64_t v) {
  proto_v2_gen_cstr(g, key);
  yajl_gen_integer(g, (long long)v);
}

/* One variable of expvar's page, which Go writes by hand: "{\n", then each variable (sorted by
 * name) as "%q: %s" with its value's compact JSON, joined by ",\n", then "\n}\n". G holds the
 * value, and is made ready for the next one. */
static void var_add(sbuf *b, const char *name, yajl_gen g) {
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  if (b->len > 2) sbuf_put(b, ",\n", 2);
  sbuf_putc(b, '"');
  sbuf_puts(b, name);
  sbuf_put(b, "\": ", 3);
  sbuf_put(b, (const char *)buf, len);
  yajl_gen_clear(g);
  yajl_gen_reset(g, NULL);
}

void debug_handle_vars(server *s, http_req *r) {
  if (r->method != HTTP_GET) {
    routes_text(r, 405, "GET", "Method Not Allowed\n");
    return;
  }
  node_status st;
  node_get_status(s->node, &st);
  struct rlimit rl = {0};
  getrlimit(RLIMIT_NOFILE, &rl);
  uint64_t in_use, from_os;
  heap_bytes(&in_use, &from_os);
  sbuf b = {0};
  sbuf_put(&b, "{\n", 2);
  yajl_gen g = proto_v2_gen_new();
  yajl_gen_array_open(g);
  for (int i = 0; i < s->cfg->argc; i++) proto_v2_gen_cstr(g, s->cfg->argv[i]);
  yajl_gen_array_close(g);
  var_add(&b, "cmdline", g);
  yajl_gen_integer(g, (long long)rl.rlim_cur);
  var_add(&b, "file_descriptor_limit", g);
  /* Go's runtime.MemStats names, for the figures a C heap has. */
  yajl_gen_map_open(g);
  gen_u64(g, "Alloc", in_use);
  gen_u64(g, "HeapAlloc", in_use);
  gen_u64(g, "HeapInuse", in_use);
  gen_u64(g, "Sys", from_os);
  gen_u64(g, "HeapSys", from_os);
  yajl_gen_map_close(g);
  var_add(&b, "memstats", g);
  yajl_gen_map_open(g);
  gen_hex(g, "id", s->member_id);
  gen_u64(g, "term", st.raft.term);
  gen_hex(g, "vote", st.raft.vote);
  gen_u64(g, "commit", st.raft.commit);
  gen_hex(g, "lead", st.raft.lead);
  proto_v2_gen_cstr(g, "raftState");
  proto_v2_gen_cstr(g, raft_state_name(st.raft.role));
  gen_u64(g, "applied", st.applied);
  proto_v2_gen_cstr(g, "progress");
  yajl_gen_map_open(g);
  for (size_t i = 0; st.raft.role == RAFT_LEADER && i < st.raft.n_peers; i++) {
    char hex[17];
    snprintf(hex, sizeof hex, "%" PRIx64, st.raft.peers[i].id);
    proto_v2_gen_cstr(g, hex);
    yajl_gen_map_open(g);
    gen_u64(g, "match", st.raft.peers[i].match);
    gen_u64(g, "next", st.raft.peers[i].next);
    proto_v2_gen_cstr(g, "state");
    proto_v2_gen_cstr(g, progress_name(st.raft.peers[i].state));
    yajl_gen_map_close(g);
  }
  yajl_gen_map_close(g);
  gen_hex(g, "leadtransferee", st.raft.lead_transferee);
  yajl_gen_map_close(g);
  var_add(&b, "raft.status", g);
  yajl_gen_free(g);
  sbuf_put(&b, "\n}\n", 3);
  http_respond(r, 200, NULL, "application/json; charset=utf-8", b.p, b.len);
  sbuf_free(&b);
}

/* ------------------------------------------------------------------ /config/local/log */

/* What Go's json.Decoder does with the body into struct{ Level string }: the first JSON value
 * only (what follows is left unread), which must be an object; its keys matched without case,
 * the last "Level" wins; a Level that is not a string (or null) is an error. */
typedef struct level_parse {
  int depth;
  int at_level; /* the next value is the top object's Level */
  int bad;
  int done;     /* the first value is complete */
  char level[256];
} level_parse;

static int lp_value(level_parse *p, int is_string, const unsigned char *s, size_t n) {
  if (p->depth == 0) p->bad = 1; /* not an object */
  if (p->at_level) {
    p->at_level = 0;
    if (!is_string) {
      p->bad = 1;
    } else {
      size_t k = n < sizeof p->level - 1 ? n : sizeof p->level - 1;
      memcpy(p->level, s, k);
      p->level[k] = 0;
    }
  }
  if (p->depth == 0) p->done = 1;
  return !p->bad;
}
static int lp_null(void *a) { /* null leaves the field (or the whole struct) as it was */
  level_parse *p = a;
  p->at_level = 0;
  if (p->depth == 0) p->done = 1;
  return 1;
}
static int lp_bool(void *a, int v) { (void)v; return lp_value(a, 0, NULL, 0); }
static int lp_number(void *a, const char *s, size_t n) { (void)s; (void)n; return lp_value(a, 0, NULL, 0); }
static int lp_string(void *a, const unsigned char *s, size_t n) { return lp_value(a, 1, s, n); }
static int lp_map_key(void *a, const unsigned char *s, size_t n) {
  level_parse *p = a;
  p->at_level = p->depth == 1 && n == 5 && !strncasecmp((const char *)s, "level", 5);
  return 1;
}
static int lp_open(void *a) {
  level_parse *p = a;
  if (p->at_level) p->bad = 1; /* Level is an object or array */
  p->at_level = 0;
  p->depth++;
  return !p->bad;
}
static int lp_start_map(void *a) { return lp_open(a); }
static int lp_start_array(void *a) {
  level_parse *p = a;
  if (p->depth == 0) p->bad = 1;
  return lp_open(a);
}
static int lp_close(void *a) {
  level_parse *p = a;
  if (--p->depth == 0) p->done = 1;
  return 1;
}

static const yajl_callbacks lp_callbacks = {lp_null, lp_bool, NULL, NULL, lp_number, lp_string,
                                            lp_start_map, lp_map_key, lp_close, lp_start_array,
                                            lp_close};

/* Returns 0 with the Level (maybe empty) in p->level, or -1 when the body is not a JSON
 * object a Go decoder takes. */
static int parse_level(const char *body, size_t len, level_parse *p) {
  memset(p, 0, sizeof *p);
  yajl_handle h = yajl_alloc(&lp_callbacks, NULL, p);
  if (!h) abort();
  yajl_config(h, yajl_allow_trailing_garbage, 1);
  yajl_status ys = yajl_parse(h, (const unsigned char *)body, len);
  if (ys == yajl_status_ok && !p->done) ys = yajl_complete_parse(h);
  yajl_free(h);
  /* (stopped by a callback once the first value was complete: the rest is not read) */
  return (ys == yajl_status_ok || (ys == yajl_status_client_canceled && p->done)) && p->done &&
                 !p->bad
             ? 0
             : -1;
}

/* capnslog's ParseLevel names (upper case) as NODE_LOG_* levels, or -1. */
static int capnslog_level(const char *name, const char **canonical) {
  static const struct {
    const char *names[3];
    const char *canonical;
    int level;
  } levels[] = {
      {{"CRITICAL", "C", NULL}, "CRITICAL", NODE_LOG_ERROR},
      {{"ERROR", "0", "E"}, "ERROR", NODE_LOG_ERROR},
      {{"WARNING", "1", "W"}, "WARNING", NODE_LOG_WARN},
      {{"NOTICE", "2", "N"}, "NOTICE", NODE_LOG_INFO},
      {{"INFO", "3", "I"}, "INFO", NODE_LOG_INFO},
      {{"DEBUG", "4", "D"}, "DEBUG", NODE_LOG_DEBUG},
      {{"TRACE", "5", "T"}, "TRACE", NODE_LOG_DEBUG},
  };
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
    for (int j = 0; j < 3; j++)
      if (levels[i].names[j] && !strcmp(levels[i].names[j], name)) {
        *canonical = levels[i].canonical;
        return levels[i].level;
      }
  return -1;
}

void debug_handle_log(server *s, http_req *r) {
  if (r->method != HTTP_PUT) {
    routes_text(r, 405, "PUT", "Method Not Allowed\n");
    return;
  }
  level_parse p;
  if (parse_level(r->body.p ? r->body.p : "", r->body.len, &p)) {
    routes_message(s, r, 400, "Invalid json body", 0);
    return;
  }
  char upper[sizeof p.level];
  for (size_t i = 0; i <= strlen(p.level); i++)
    upper[i] = (char)(p.level[i] >= 'a' && p.level[i] <= 'z' ? p.level[i] - 32 : p.level[i]);
  const char *canonical;
  int level = capnslog_level(upper, &canonical);
  if (level < 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "Invalid log level %s", p.level);
    routes_message(s, r, 400, msg, 0);
    return;
  }
  fprintf(stderr, "quorumd: log level set to \"%s\"\n", canonical);
  node_set_log_level(s->node, level);
  http_respond(r, 204, NULL, NULL, "", 0);
}
