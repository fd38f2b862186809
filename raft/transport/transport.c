/* transport: the public side of raft/transport — start and stop, the peer table, send (encode
 * and queue), per-peer counters, the drop hook, and callbacks deferred to the loop (a zero
 * timer) so none runs inside a raft_transport_* call. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/transport/transport_i.h"

void rt_log(raft_transport *t, int level, const char *fmt, ...) {
  if (!t->cfg.log) return;
  char line[320];
  int n = snprintf(line, sizeof line, "raft transport %llx: ", (unsigned long long)t->cfg.self_id);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  t->cfg.log(t->cfg.log_arg, level, line);
}

int raft_transport_parse_addr(const char *s, struct sockaddr_storage *out) {
  char host[64];
  const char *colon;
  memset(out, 0, sizeof *out);
  if (!s) return -EINVAL;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host) return -EINVAL;
    memcpy(host, s + 1, (size_t)(end - s - 1));
    host[end - s - 1] = 0;
    colon = end + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host) return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
  }
  char *endp;
  unsigned long port = strtoul(colon + 1, &endp, 10);
  if (colon[1] == 0 || *endp || port > 65535) return -EINVAL;
  if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0) return 0;
  if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0) return 0;
  return -EINVAL;
}

rt_peer *rt_peer_find(const raft_transport *t, uint64_t id) {
  for (size_t i = 0; i < t->n_peers; i++)
    if (t->peers[i]->id == id) return t->peers[i];
  return NULL;
}

/* ---- deferred callbacks ---- */

static void notify_cb(uv_timer_t *h) {
  raft_transport *t = h->data;
  t->notify_armed = false;
  /* Rescan after each callback: it may add, remove or stop anything. */
  for (;;) {
    rt_peer *p = NULL;
    for (size_t i = 0; i < t->n_peers && !p; i++)
      if (t->peers[i]->notify_unreachable || t->peers[i]->notify_gone || t->peers[i]->notify_snap)
        p = t->peers[i];
    if (!p || t->stopping) return;
    uint64_t id = p->id;
    if (p->notify_gone) {
      p->notify_gone = false;
      if (t->cbs.on_peer_gone) t->cbs.on_peer_gone(t->cbs.arg, id);
    } else if (p->notify_unreachable) {
      p->notify_unreachable = false;
      if (t->cbs.on_unreachable) t->cbs.on_unreachable(t->cbs.arg, id);
    } else {
      bool ok = p->notify_snap > 0;
      p->notify_snap = 0;
      if (t->cbs.on_snapshot_status) t->cbs.on_snapshot_status(t->cbs.arg, id, ok);
    }
  }
}

static void notify_arm(raft_transport *t) {
  if (t->notify_armed || t->stopping) return;
  t->notify_armed = true;
  uv_timer_start(&t->notify_timer, notify_cb, 0, 0);
}

void rt_notify_unreachable(rt_peer *p) {
  if (p->removed) return;
  p->notify_unreachable = true;
  notify_arm(p->t);
}

void rt_notify_gone(rt_peer *p) {
  if (p->removed) return;
  p->notify_gone = true;
  notify_arm(p->t);
}

void rt_notify_snapshot(rt_peer *p, bool ok) {
  if (p->removed) return;
  p->notify_snap = ok ? 1 : -1;
  notify_arm(p->t);
}

/* ---- lifetime ---- */

void rt_handle_closed(raft_transport *t) {
  if (--t->handles > 0 || !t->stopping) return;
  free(t->peers);
  free(t->listen_addr);
  free(t->bind_host);
  free(t);
}

void rt_peer_release(rt_peer *p) {
  if (p->removed && p->open_timers == 0 && p->refs == 0) free(p);
}

static void peer_timer_closed_cb(uv_handle_t *h) {
  rt_peer *p = h->data;
  raft_transport *t = p->t;
  p->open_timers--;
  rt_peer_release(p);
  rt_handle_closed(t);
}

static void notify_closed_cb(uv_handle_t *h) {
  rt_handle_closed(h->data);
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

int raft_transport_start(uv_loop_t *loop, const raft_transport_config *cfg,
                         const raft_transport_callbacks *cbs, raft_transport **out) {
  struct sockaddr_storage listen;
  *out = NULL;
  if (!cfg->self_id) return -EINVAL;
  raft_transport *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  t->loop = loop;
  t->cfg = *cfg;
  t->cbs = *cbs;
  raft_transport_config *c = &t->cfg;
  if (!c->max_queue_bytes) c->max_queue_bytes = 4u << 20;
  if (!c->max_frame) c->max_frame = RAFT_CODEC_DEFAULT_MAX_FRAME;
  if (!c->snap_chunk) c->snap_chunk = 1u << 20;
  if (!c->max_snapshot) c->max_snapshot = 4ULL << 30;
  if (!c->backoff_min_ms) c->backoff_min_ms = 50;
  if (!c->backoff_max_ms) c->backoff_max_ms = 2000;
  if (!c->snap_timeout_ms) c->snap_timeout_ms = 120000;
  int rc = 0;
  if (c->max_frame > UINT32_MAX || c->snap_chunk + 4096 > c->max_frame ||
      c->backoff_min_ms > c->backoff_max_ms)
    rc = -EINVAL;
  if (!rc && c->listen_addr && raft_transport_parse_addr(c->listen_addr, &listen)) rc = -EINVAL;
  if (!rc && c->bind_host) {
    if (uv_ip4_addr(c->bind_host, 0, (struct sockaddr_in *)&t->bind_addr) &&
        uv_ip6_addr(c->bind_host, 0, (struct sockaddr_in6 *)&t->bind_addr))
      rc = -EINVAL;
    t->has_bind = true;
  }
  if (rc) {
    free(t);
    return rc;
  }
  t->listen_addr = dup_or_null(c->listen_addr);
  t->bind_host = dup_or_null(c->bind_host);
  c->listen_addr = t->listen_addr;
  c->bind_host = t->bind_host;
  uv_timer_init(loop, &t->notify_timer);
  t->notify_timer.data = t;
  t->handles++;
  if (c->listen_addr) rc = rt_in_listen(t, (const struct sockaddr *)&listen);
  if (rc) {
    raft_transport_stop(t);
    return rc;
  }
  *out = t;
  return 0;
}

static void peer_destroy(rt_peer *p) {
  p->removed = true;
  p->notify_unreachable = false;
  p->notify_gone = false;
  p->notify_snap = 0;
  rt_snap_abort(p, false);
  rt_peer_close_conns(p);
  uv_close((uv_handle_t *)&p->retry_timer, peer_timer_closed_cb);
  uv_close((uv_handle_t *)&p->snap_out.timer, peer_timer_closed_cb);
}

void raft_transport_stop(raft_transport *t) {
  if (!t || t->stopping) return;
  t->stopping = true;
  rt_in_close_listener(t);
  while (t->inbound) rt_conn_close(t->inbound, 0, NULL);
  for (size_t i = 0; i < t->n_peers; i++) peer_destroy(t->peers[i]);
  t->n_peers = 0;
  uv_close((uv_handle_t *)&t->notify_timer, notify_closed_cb);
}

int raft_transport_listen_port(const raft_transport *t) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (!t->listening || uv_tcp_getsockname(&t->listener, (struct sockaddr *)&ss, &len)) return 0;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return 0;
}

/* ---- peers ---- */

/* "[http[s]://]host:port" → the socket address, whether it is https, and the host. */
static int peer_addr(const raft_transport *t, const char *addr, struct sockaddr_storage *ss,
                     bool *tls, char *host, size_t cap) {
  *tls = false;
  if (!strncmp(addr, "https://", 8)) {
    *tls = true;
    addr += 8;
  } else if (!strncmp(addr, "http://", 7)) {
    addr += 7;
  }
  if (*tls && !t->cfg.tls_client) return -EINVAL;
  if (raft_transport_parse_addr(addr, ss)) return -EINVAL;
  const char *colon = strrchr(addr, ':');
  const char *h = addr;
  size_t n = (size_t)(colon - addr);
  if (h[0] == '[' && n >= 2) { /* [v6] */
    h++;
    n -= 2;
  }
  if (n >= cap) return -EINVAL;
  memcpy(host, h, n);
  host[n] = '\0';
  return 0;
}

int raft_transport_add_peer(raft_transport *t, uint64_t id, const char *addr) {
  struct sockaddr_storage ss;
  bool tls;
  char host[64];
  if (t->stopping) return -ECANCELED;
  if (id == RAFT_NONE || id == t->cfg.self_id || peer_addr(t, addr, &ss, &tls, host, sizeof host))
    return -EINVAL;
  if (rt_peer_find(t, id)) return -EEXIST;
  if (t->n_peers == t->cap_peers) {
    size_t cap = t->cap_peers ? t->cap_peers * 2 : 8;
    rt_peer **np = realloc(t->peers, cap * sizeof *np);
    if (!np) return -ENOMEM;
    t->peers = np;
    t->cap_peers = cap;
  }
  rt_peer *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  p->t = t;
  p->id = id;
  p->addr = ss;
  p->tls = tls;
  memcpy(p->host, host, sizeof host);
  p->backoff_ms = t->cfg.backoff_min_ms;
  p->stats.id = id;
  uv_timer_init(t->loop, &p->retry_timer);
  uv_timer_init(t->loop, &p->snap_out.timer);
  p->retry_timer.data = p;
  p->snap_out.timer.data = p;
  p->open_timers = 2;
  t->handles += 2;
  t->peers[t->n_peers++] = p;
  return 0;
}

int raft_transport_connect(raft_transport *t, uint64_t id) {
  rt_peer *p = rt_peer_find(t, id);
  if (!p) return -ENOENT;
  rt_out_connect(p);
  return 0;
}

int raft_transport_update_peer(raft_transport *t, uint64_t id, const char *addr) {
  struct sockaddr_storage ss;
  bool tls;
  char host[64];
  rt_peer *p = rt_peer_find(t, id);
  if (!p) return -ENOENT;
  if (peer_addr(t, addr, &ss, &tls, host, sizeof host)) return -EINVAL;
  p->addr = ss;
  p->tls = tls;
  memcpy(p->host, host, sizeof host);
  p->backoff_ms = t->cfg.backoff_min_ms;
  p->retry_at_ms = 0;
  rt_peer_close_conns(p);
  return 0;
}

int raft_transport_remove_peer(raft_transport *t, uint64_t id) {
  for (size_t i = 0; i < t->n_peers; i++) {
    if (t->peers[i]->id != id) continue;
    rt_peer *p = t->peers[i];
    t->peers[i] = t->peers[--t->n_peers];
    peer_destroy(p);
    return 0;
  }
  return -ENOENT;
}

/* ---- sending ---- */

void raft_transport_cork(raft_transport *t) { t->corked = true; }

void raft_transport_uncork(raft_transport *t) {
  if (!t->corked) return;
  t->corked = false;
  for (size_t i = 0; i < t->n_peers; i++) rt_out_uncork(t->peers[i]);
}

int raft_transport_send(raft_transport *t, const raft_message *m) {
  if (t->stopping) return -ECANCELED;
  if (!raft_codec_is_wire_type(m->type)) return -EINVAL;
  rt_peer *p = rt_peer_find(t, m->to);
  if (!p) return -ENOENT;
  bool dropped = p->drop;
  if (!dropped && p->drop_count && m->type == p->drop_type) {
    p->drop_count--;
    rt_log(t, 2, "test hook: dropped a message of type %u to %llx (%u more to drop)", m->type,
           (unsigned long long)p->id, p->drop_count);
    dropped = true;
  }
  if (dropped) {
    /* As over a cut network: a snapshot that cannot be sent is reported failed (the core
     * waits for that report before it replicates to the peer again). */
    if (m->type == RAFT_MSG_SNAP) {
      p->stats.snapshot_failures++;
      rt_notify_snapshot(p, false);
    }
    return 0;
  }
  if (m->type == RAFT_MSG_SNAP) return rt_snap_send(p, m);
  rt_frame *f = rt_frame_new();
  if (!f) return -ENOMEM;
  int rc = raft_codec_encode_message(&f->buf, m);
  if (rc == 0 && f->buf.len - RAFT_CODEC_HEADER_LEN > t->cfg.max_frame) {
    rt_log(t, 2, "dropping a message of type %u to %llx: %zu bytes, over the frame limit",
           m->type, (unsigned long long)p->id, f->buf.len);
    rc = -EMSGSIZE;
  } else if (rc == 0 && p->queued_bytes + f->buf.len > t->cfg.max_queue_bytes) {
    rc = -ENOBUFS;
  }
  if (rc < 0) {
    rt_frame_free(f);
    if (rc == -EINVAL) return rc;
    p->stats.send_failures++;
    p->loss_epoch++;
    rt_notify_unreachable(p);
    return rc;
  }
  f->kind = RAFT_CODEC_MESSAGE;
  f->msg_type = m->type;
  f->queued = f->buf.len;
  p->queued_bytes += f->queued;
  if (m->type == RAFT_MSG_HEARTBEAT) {
    uint64_t now = uv_hrtime();
    if (!p->hb_sent_ns || now - p->hb_sent_ns > 5000000000ULL) p->hb_sent_ns = now;
  }
  rt_out_send_frame(p, f);
  return 0;
}

/* ---- counters and the fault hook ---- */

int raft_transport_peer_stats(const raft_transport *t, uint64_t id,
                              raft_transport_stats *st) {
  const rt_peer *p = rt_peer_find(t, id);
  if (!p) return -ENOENT;
  *st = p->stats;
  st->id = id;
  st->connected = p->msg && p->msg->connected;
  st->queued_bytes = p->queued_bytes;
  return 0;
}

int raft_transport_set_drop(raft_transport *t, uint64_t id, bool on) {
  rt_peer *p = rt_peer_find(t, id);
  if (!p) return -ENOENT;
  p->drop = on;
  if (on) {
    p->hb_sent_ns = 0;
    rt_snap_abort(p, true);
  }
  return 0;
}

uint64_t raft_transport_loss_epoch(const raft_transport *t, uint64_t id) {
  const rt_peer *p = rt_peer_find(t, id);
  return p ? p->loss_epoch : 0;
}

int raft_transport_break(raft_transport *t, uint64_t id) {
  rt_peer *p = rt_peer_find(t, id);
  if (!p) return -ENOENT;
  if (p->msg) {
    p->msg->reset = p->msg->connected;
    rt_conn_close(p->msg, 2, "test hook: connection reset");
  }
  return 0;
}

int raft_transport_drop_next(raft_transport *t, uint64_t id, uint8_t type, unsigned count) {
  if (!raft_codec_is_wire_type(type)) return -EINVAL;
  rt_peer *p = rt_peer_find(t, id);
  if (!p) return -ENOENT;
  p->drop_type = type;
  p->drop_count = count;
  return 0;
}
