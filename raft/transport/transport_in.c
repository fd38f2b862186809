/* transport_in: the listener and the connections peers open to us — the handshake check
 * (version, cluster id, addressee), delivery of messages to on_message, and reassembly of a
 * chunked snapshot into one MSG_SNAP followed by an ack (in memory, or spooled to a nameless
 * file). Anything unexpected closes that one connection with one log line. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "raft/storage/snap_spool.h"
#include "raft/transport/transport_i.h"

#define HTTP_HEAD_MAX 8192

void rt_in_http(rt_conn *c) {
  const char *b = (const char *)c->rbuf;
  size_t end = 0;
  for (size_t i = 0; i + 4 <= c->rlen && !end; i++)
    if (!memcmp(b + i, "\r\n\r\n", 4)) end = i;
  if (!end) {
    if (c->rlen > HTTP_HEAD_MAX) rt_conn_close(c, 2, "HTTP request head too long");
    return;
  }
  const char *path = b + 4;
  size_t plen = 0;
  while (4 + plen < end && path[plen] != ' ' && path[plen] != '\r') plen++;
  size_t n = 0;
  char *resp = c->t->cbs.http_get && plen ? c->t->cbs.http_get(c->t->cbs.arg, path, plen, &n) : NULL;
  if (!resp) {
    static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
                             "Content-Length: 19\r\nConnection: close\r\n\r\n404 page not found\n";
    resp = malloc(sizeof nf - 1);
    if (!resp) {
      rt_conn_close(c, 3, "out of memory answering HTTP");
      return;
    }
    memcpy(resp, nf, sizeof nf - 1);
    n = sizeof nf - 1;
  }
  c->http = true;
  c->rlen = 0;
  rt_frame *f = rt_frame_new();
  if (!f) {
    free(resp);
    rt_conn_close(c, 3, "out of memory answering HTTP");
    return;
  }
  f->buf = (raft_codec_buf){.base = (uint8_t *)resp, .len = n, .cap = n};
  f->kind = RT_FRAME_HTTP;
  if (rt_conn_write(c, f) && !c->closing) rt_conn_close(c, 2, "cannot answer HTTP");
}

static void listener_closed_cb(uv_handle_t *h) {
  rt_handle_closed(h->data);
}

static void on_connection(uv_stream_t *server, int status) {
  raft_transport *t = server->data;
  if (status < 0 || t->stopping) {
    if (status < 0) rt_log(t, 2, "accept: %s", uv_strerror(status));
    return;
  }
  rt_conn *c = rt_conn_new(t, RT_CONN_IN, NULL);
  if (!c) {
    rt_log(t, 3, "accept: out of memory");
    return;
  }
  c->next = t->inbound;
  if (t->inbound) t->inbound->prev = c;
  t->inbound = c;
  int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
  if (rc < 0) {
    rt_conn_close(c, 2, uv_strerror(rc));
    return;
  }
  c->connected = true;
  uv_tcp_nodelay(&c->tcp, 1);
  if (t->cfg.tls_server && rt_conn_tls_start(c, t->cfg.tls_server, NULL)) return;
  rt_conn_start_read(c);
}

int rt_in_listen(raft_transport *t, const struct sockaddr *addr) {
  int rc = uv_tcp_init(t->loop, &t->listener);
  if (rc < 0) return rc;
  t->handles++;
  t->listening = true;
  t->listener.data = t;
  rc = uv_tcp_bind(&t->listener, addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
  return rc;
}

void rt_in_close_listener(raft_transport *t) {
  if (t->listening) {
    t->listening = false;
    uv_close((uv_handle_t *)&t->listener, listener_closed_cb);
  }
}

static void snap_in_reset(rt_snap_in *si) {
  if (si->mapped) munmap(si->data, si->cap);
  else free(si->data);
  raft_codec_frame_free(&si->first);
  memset(si, 0, sizeof *si);
}

void rt_in_on_closed(rt_conn *c) {
  raft_transport *t = c->t;
  if (c->prev) c->prev->next = c->next;
  else if (t->inbound == c) t->inbound = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  snap_in_reset(&c->snap_in);
}

/* Closes c for a protocol violation; frees f. */
static void reject(rt_conn *c, raft_codec_frame *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reject(rt_conn *c, raft_codec_frame *f, const char *fmt, ...) {
  char why[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  raft_codec_frame_free(f);
  rt_conn_close(c, 2, why);
}

/* Answers a removed member's handshake with REMOVED; write_cb closes the connection once the
 * frame is out. */
static void tell_removed(rt_conn *c) {
  rt_log(c->t, 2, "member %" PRIx64 " was removed from the cluster: telling it so", c->from);
  c->refused = true;
  rt_frame *f = rt_frame_new();
  if (!f || raft_codec_encode_removed(&f->buf, c->from) < 0) {
    rt_frame_free(f);
    rt_conn_close(c, 2, "cannot encode a REMOVED frame");
    return;
  }
  f->kind = RAFT_CODEC_REMOVED;
  rt_conn_write(c, f);
}

static bool check_handshake(rt_conn *c, raft_codec_frame *f) {
  const raft_transport_config *cfg = &c->t->cfg;
  const raft_codec_handshake *h = &f->handshake;
  if (f->kind != RAFT_CODEC_HANDSHAKE) {
    reject(c, f, "expected a handshake, got frame kind %u", f->kind);
    return false;
  }
  if (h->cluster_id != cfg->cluster_id) {
    reject(c, f, "handshake from member %" PRIx64 " of cluster %" PRIx64 ", not %" PRIx64,
           h->from, h->cluster_id, cfg->cluster_id);
    return false;
  }
  if (h->to != cfg->self_id) {
    reject(c, f, "handshake from member %" PRIx64 " addressed to member %" PRIx64 ", not %" PRIx64,
           h->from, h->to, cfg->self_id);
    return false;
  }
  if (h->from == RAFT_NONE || h->from == cfg->self_id) {
    reject(c, f, "handshake with sender id %" PRIx64, h->from);
    return false;
  }
  if (c->t->cbs.is_removed && c->t->cbs.is_removed(c->t->cbs.arg, h->from)) {
    c->from = h->from;
    raft_codec_frame_free(f);
    tell_removed(c);
    return false;
  }
  c->handshaken = true;
  c->from = h->from;
  raft_codec_frame_free(f);
  rt_peer *p = rt_peer_find(c->t, c->from);
  if (p) rt_out_peer_alive(p);
  return true;
}

static bool check_addressing(rt_conn *c, raft_codec_frame *f, const raft_message *m) {
  if (m->to != c->t->cfg.self_id || m->from != c->from) {
    reject(c, f, "message from %" PRIx64 " to %" PRIx64 " on the connection of %" PRIx64,
           m->from, m->to, c->from);
    return false;
  }
  return true;
}

static void count_recv(rt_peer *p, const raft_message *m, size_t bytes) {
  if (!p) return;
  p->stats.msgs_recv++;
  if (m->type == RAFT_MSG_APP) {
    p->stats.append_recv++;
    p->stats.append_bytes_recv += bytes;
  }
  if (m->type == RAFT_MSG_HEARTBEAT_RESP && p->hb_sent_ns) {
    p->stats.rtt_us = (uv_hrtime() - p->hb_sent_ns) / 1000;
    if (!p->stats.rtt_us) p->stats.rtt_us = 1;
    p->hb_sent_ns = 0;
  }
}

static void deliver(raft_transport *t, const raft_message *m) {
  if (t->cbs.on_message && !t->stopping) t->cbs.on_message(t->cbs.arg, m);
}

static void send_ack(rt_conn *c, uint64_t snap_id, bool ok) {
  raft_codec_snap_ack a = {.snap_id = snap_id, .ok = ok};
  rt_frame *f = rt_frame_new();
  if (!f || raft_codec_encode_snap_ack(&f->buf, &a) < 0) {
    rt_frame_free(f);
    rt_conn_close(c, 3, "cannot encode a snapshot ack");
    return;
  }
  f->kind = RAFT_CODEC_SNAP_ACK;
  rt_conn_write(c, f);
}

static void on_chunk(rt_conn *c, raft_codec_frame *f, rt_peer *p) {
  raft_transport *t = c->t;
  rt_snap_in *si = &c->snap_in;
  const raft_codec_snap_chunk *ch = &f->chunk;
  if (f->has_message) {
    if (si->active) {
      reject(c, f, "snapshot %" PRIu64 " restarted by %" PRIu64, si->snap_id, ch->snap_id);
      return;
    }
    if (!check_addressing(c, f, &f->message)) return;
    if (ch->total > t->cfg.max_snapshot) {
      reject(c, f, "snapshot of %" PRIu64 " bytes, over the limit of %" PRIu64, ch->total,
             t->cfg.max_snapshot);
      return;
    }
    si->active = true;
    si->snap_id = ch->snap_id;
    si->total = ch->total;
    si->next_off = 0;
  } else if (!si->active || ch->snap_id != si->snap_id) {
    reject(c, f, "chunk of unknown snapshot %" PRIu64, ch->snap_id);
    return;
  }
  if (ch->offset != si->next_off || ch->total != si->total) {
    reject(c, f, "snapshot chunk at %" PRIu64 " of %" PRIu64 ", expected %" PRIu64 " of %" PRIu64,
           ch->offset, ch->total, si->next_off, si->total);
    return;
  }
  /* The whole announced size (at most max_snapshot) is reserved at once: its pages are
   * touched only as the data arrives, so memory grows with what actually came, and the buffer
   * is never copied (growing it by reallocation held each old copy too, and the allocator keeps
   * freed pages resident for a while: about 2.5 times the snapshot at the peak). */
  if (ch->data.len && !si->data && t->cfg.snapshot_dir) {
    si->data = raft_spool_map(t->cfg.snapshot_dir, si->total);
    if (si->data) {
      si->mapped = true;
      si->cap = si->total;
    } else {
      rt_log(t, 2, "cannot spool a snapshot of %" PRIu64 " bytes to %s (%s): it is received in "
             "memory", si->total, t->cfg.snapshot_dir, strerror(errno));
    }
  }
  if (ch->data.len && !si->data) {
    si->data = malloc(si->total);
    if (!si->data) {
      reject(c, f, "out of memory for a snapshot of %" PRIu64 " bytes", si->total);
      return;
    }
    si->cap = si->total;
  }
  if (ch->data.len) memcpy(si->data + ch->offset, ch->data.base, ch->data.len);
  si->next_off += ch->data.len;
  bool last = ch->last;
  if (f->has_message) si->first = *f; /* keeps the MSG_SNAP message (and its arena) */
  else raft_codec_frame_free(f);
  if (!last) return;
  /* Take the snapshot out of the connection first: a callback that stops the transport or
   * closes this connection must not free it under the callback's feet. */
  raft_codec_frame first = si->first;
  uint8_t *data = si->data;
  uint64_t id = si->snap_id, total = si->total;
  bool mapped = si->mapped;
  memset(si, 0, sizeof *si);
  raft_message *m = &first.message;
  m->snapshot->data = (raft_buf){total ? data : NULL, total};
  m->snapshot->release = mapped ? raft_spool_release : NULL;
  m->snapshot_movable = true; /* (the core keeps the buffer rather than a copy of it) */
  count_recv(p, m, 0);
  deliver(t, m);
  raft_snapshot_free_data(m->snapshot); /* (unless taken) */
  raft_codec_frame_free(&first);
  if (!c->closing && !t->stopping) send_ack(c, id, true);
}

void rt_in_on_frame(rt_conn *c, raft_codec_frame *f, size_t frame_bytes) {
  raft_transport *t = c->t;
  if (c->refused) {
    raft_codec_frame_free(f);
    return;
  }
  if (!c->handshaken) {
    check_handshake(c, f);
    return;
  }
  rt_peer *p = rt_peer_find(t, c->from);
  if (p) p->stats.bytes_recv += frame_bytes;
  switch (f->kind) {
    case RAFT_CODEC_MESSAGE:
      if (!check_addressing(c, f, &f->message)) return;
      if (p && p->drop) break;
      count_recv(p, &f->message, frame_bytes);
      deliver(t, &f->message);
      break;
    case RAFT_CODEC_SNAP_CHUNK:
      if (p && p->drop) {
        raft_codec_frame_free(f);
        rt_conn_close(c, 0, "snapshot from a dropped peer");
        return;
      }
      on_chunk(c, f, p);
      return;
    default:
      reject(c, f, "unexpected frame kind %u after the handshake", f->kind);
      return;
  }
  raft_codec_frame_free(f);
}
