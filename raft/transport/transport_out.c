/* transport_out: the connections a member opens to a peer — the message connection (opened on
 * demand, reopened after a failure no sooner than the backoff allows, its queue dropped when it
 * fails) and the per-snapshot connection that streams a snapshot in chunks and waits for the
 * receiver's ack. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/transport/transport_i.h"

static void out_connect_cb(uv_connect_t *req, int status);

/* Opens an outbound connection of role to p; NULL when it failed at once (already closed, with
 * the failure's effects applied). */
static rt_conn *out_open(rt_peer *p, uint8_t role) {
  raft_transport *t = p->t;
  rt_conn *c = rt_conn_new(t, role, p);
  if (!c) return NULL;
  if (role == RT_CONN_OUT_MSG) {
    p->msg = c;
    c->probe = p->probe_due;
    p->probe_due = false;
  } else {
    p->snap = c;
  }
  int rc = 0;
  if (t->has_bind) rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&t->bind_addr, 0);
  if (rc == 0) {
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&p->addr,
                        out_connect_cb);
  }
  if (rc < 0) {
    char why[128];
    snprintf(why, sizeof why, "connect: %s", uv_strerror(rc));
    rt_conn_close(c, 0, why);
    return NULL;
  }
  return c;
}

static void list_push(rt_frame **head, rt_frame **tail, rt_frame *f) {
  f->next = NULL;
  if (*tail) (*tail)->next = f;
  else *head = f;
  *tail = f;
}

static void drop_list(rt_peer *p, rt_frame **head, rt_frame **tail) {
  if (*head) p->loss_epoch++;
  while (*head) {
    rt_frame *f = *head;
    *head = f->next;
    p->queued_bytes -= f->queued;
    p->stats.send_failures++;
    rt_frame_free(f);
  }
  *tail = NULL;
}

/* The frames waiting for a connection, and those held by a cork. */
static void drop_pending(rt_peer *p) {
  drop_list(p, &p->pending_head, &p->pending_tail);
  drop_list(p, &p->cork_head, &p->cork_tail);
}

static void retry_cb(uv_timer_t *h) {
  rt_peer *p = h->data;
  p->retry_armed = false;
  if (!p->msg && (p->pending_head || p->probe_due) && !p->t->stopping && !p->removed)
    out_open(p, RT_CONN_OUT_MSG);
}

/* The retry timer: armed for retry_at_ms (once), or cancelled. */
static void retry_arm(rt_peer *p) {
  if (p->retry_armed) return;
  uint64_t now = uv_now(p->t->loop);
  p->retry_armed = true;
  uv_timer_start(&p->retry_timer, retry_cb, p->retry_at_ms > now ? p->retry_at_ms - now : 0, 0);
}

static void retry_cancel(rt_peer *p) {
  if (p->retry_armed) uv_timer_stop(&p->retry_timer);
  p->retry_armed = false;
}

void rt_out_peer_alive(rt_peer *p) {
  raft_transport *t = p->t;
  if (p->msg || p->removed || t->stopping) return;
  p->backoff_ms = t->cfg.backoff_min_ms;
  p->retry_at_ms = uv_now(t->loop);
  if (!p->retry_armed) return; /* (the next send connects at once) */
  retry_cancel(p);
  if (p->pending_head || p->probe_due) out_open(p, RT_CONN_OUT_MSG);
}

void rt_out_connect(rt_peer *p) {
  raft_transport *t = p->t;
  if (p->msg || p->removed || t->stopping) return;
  retry_cancel(p);
  out_open(p, RT_CONN_OUT_MSG);
}

void rt_out_send_frame(rt_peer *p, rt_frame *f) {
  if (p->msg && p->msg->connected) {
    if (p->t->corked) list_push(&p->cork_head, &p->cork_tail, f);
    else rt_conn_write(p->msg, f);
    return;
  }
  list_push(&p->pending_head, &p->pending_tail, f);
  if (p->msg || p->retry_armed) return;
  if (uv_now(p->t->loop) >= p->retry_at_ms) out_open(p, RT_CONN_OUT_MSG);
  else retry_arm(p);
}

static void write_next_chunk(rt_conn *c) {
  rt_peer *p = c->peer;
  raft_transport *t = c->t;
  rt_snap_out *so = &p->snap_out;
  uint64_t total = so->snap.data.len;
  uint64_t len = total - so->off;
  if (len > t->cfg.snap_chunk) len = t->cfg.snap_chunk;
  raft_codec_snap_chunk ch = {.snap_id = so->snap_id, .offset = so->off, .total = total,
                              .last = so->off + len == total,
                              .data = {len ? so->snap.data.base + so->off : NULL, len}};
  rt_frame *f = rt_frame_new();
  int rc = f ? raft_codec_encode_snap_chunk(&f->buf, &ch, so->off == 0 ? &so->msg : NULL)
             : -ENOMEM;
  if (rc < 0) {
    rt_frame_free(f);
    rt_conn_close(c, 3, "cannot encode a snapshot chunk");
    return;
  }
  f->kind = RAFT_CODEC_SNAP_CHUNK;
  so->off += len;
  if (ch.last) so->acked_wait = true;
  rt_conn_write(c, f);
}

void rt_snap_chunk_written(rt_conn *c) {
  rt_peer *p = c->peer;
  if (!p || p->snap != c || !p->snap_out.active || p->snap_out.acked_wait) return;
  write_next_chunk(c);
}

/* The connection can carry frames (TCP connected, and TLS done when it runs TLS): the
 * handshake frame, then a snapshot's chunks or the messages waiting. */
static void out_ready(rt_conn *c) {
  raft_transport *t = c->t;
  c->connected = true;
  c->connected_at_ms = uv_now(t->loop);
  raft_codec_handshake hs = {.cluster_id = t->cfg.cluster_id, .from = t->cfg.self_id,
                             .to = c->peer->id,
                             .channel = c->role == RT_CONN_OUT_SNAP ? RAFT_CODEC_CHANNEL_SNAPSHOT
                                                                    : RAFT_CODEC_CHANNEL_MESSAGES};
  rt_frame *f = rt_frame_new();
  if (!f || raft_codec_encode_handshake(&f->buf, &hs) < 0) {
    rt_frame_free(f);
    rt_conn_close(c, 3, "cannot encode the handshake");
    return;
  }
  f->kind = RAFT_CODEC_HANDSHAKE;
  if (rt_conn_write(c, f) < 0) return;
  rt_peer *p = c->peer;
  if (c->role == RT_CONN_OUT_SNAP) {
    write_next_chunk(c);
    return;
  }
  while (p->pending_head && !c->closing) {
    rt_frame *pf = p->pending_head;
    p->pending_head = pf->next;
    if (!p->pending_head) p->pending_tail = NULL;
    rt_conn_write(c, pf);
  }
}

void rt_out_on_tls_ready(rt_conn *c) { out_ready(c); }

static void out_connect_cb(uv_connect_t *req, int status) {
  rt_conn *c = req->handle->data;
  if (c->closing) return;
  if (status < 0) {
    char why[128];
    snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
    c->connect_status = status;
    rt_conn_close(c, 0, why);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, 10);
  if (rt_conn_start_read(c) < 0) return;
  if (c->peer->tls) { /* usable once the TLS handshake is done (rt_out_on_tls_ready) */
    rt_conn_tls_start(c, c->t->cfg.tls_client, c->peer->host);
    return;
  }
  out_ready(c);
}

/* Ends the snapshot in flight to p: frees it, stops its timer, closes its connection, and
 * (when notify) reports the outcome. */
static void snap_end(rt_peer *p, bool notify, bool ok) {
  rt_snap_out *so = &p->snap_out;
  if (!so->active) return;
  so->active = false;
  raft_snapshot_free_data(&so->snap);
  memset(&so->snap, 0, sizeof so->snap);
  uv_timer_stop(&so->timer);
  if (p->snap) rt_conn_close(p->snap, 0, NULL);
  if (ok) p->stats.snapshots_sent++;
  else p->stats.snapshot_failures++;
  if (notify) rt_notify_snapshot(p, ok);
}

void rt_snap_abort(rt_peer *p, bool notify) {
  snap_end(p, notify, false);
}

static void snap_timeout_cb(uv_timer_t *h) {
  rt_peer *p = h->data;
  rt_log(p->t, 2, "snapshot to %llx not acknowledged in %u ms", (unsigned long long)p->id,
         p->t->cfg.snap_timeout_ms);
  snap_end(p, true, false);
}

int rt_snap_send(rt_peer *p, const raft_message *m) {
  raft_transport *t = p->t;
  rt_snap_out *so = &p->snap_out;
  if (!m->snapshot) return -EINVAL;
  if (so->active) {
    p->stats.snapshot_failures++;
    rt_notify_snapshot(p, false);
    return -EBUSY;
  }
  memset(so, 0, offsetof(rt_snap_out, timer));
  so->snap = *m->snapshot;
  if (m->snapshot_movable) { /* taken, not copied: it can be the whole state machine */
    m->snapshot->data = (raft_buf){0};
  } else if (so->snap.data.len) {
    so->snap.release = NULL; /* (a copy of ours) */
    so->snap.data.base = malloc(so->snap.data.len);
    if (!so->snap.data.base) return -ENOMEM;
    memcpy(so->snap.data.base, m->snapshot->data.base, so->snap.data.len);
  }
  so->msg = *m;
  so->msg.entries = NULL;
  so->msg.n_entries = 0;
  so->msg.context = (raft_buf){NULL, 0};
  so->msg.snapshot = &so->snap;
  so->snap_id = ++t->next_snap_id;
  so->active = true;
  uv_timer_start(&so->timer, snap_timeout_cb, t->cfg.snap_timeout_ms, 0);
  out_open(p, RT_CONN_OUT_SNAP);
  return 0;
}

void rt_out_on_frame(rt_conn *c, raft_codec_frame *f) {
  rt_peer *p = c->peer;
  if (f->kind == RAFT_CODEC_REMOVED) {
    bool me = f->removed_id == c->t->cfg.self_id;
    raft_codec_frame_free(f);
    raft_transport *t = c->t;
    rt_conn_close(c, 2, me ? "this member was removed from the cluster"
                           : "REMOVED frame naming another member");
    if (me && t->cbs.on_removed && !t->stopping) t->cbs.on_removed(t->cbs.arg);
    return;
  }
  bool ack = f->kind == RAFT_CODEC_SNAP_ACK;
  bool ok = f->ack.ok;
  uint64_t id = f->ack.snap_id;
  raft_codec_frame_free(f);
  if (c->role == RT_CONN_OUT_MSG) return; /* nothing is expected back; ignore */
  if (!ack || !p || p->snap != c || !p->snap_out.active || !p->snap_out.acked_wait ||
      id != p->snap_out.snap_id) {
    rt_conn_close(c, 2, "unexpected frame on a snapshot connection");
    return;
  }
  if (!ok) rt_log(c->t, 2, "snapshot refused by %llx", (unsigned long long)p->id);
  snap_end(p, true, ok);
}

void rt_out_on_closed(rt_conn *c) {
  rt_peer *p = c->peer;
  if (!p) return;
  raft_transport *t = c->t;
  bool live = !t->stopping && !p->removed;
  if (c->role == RT_CONN_OUT_SNAP) {
    if (p->snap == c) {
      p->snap = NULL;
      snap_end(p, live, false);
    }
    return;
  }
  if (p->msg != c) return;
  p->msg = NULL;
  p->hb_sent_ns = 0;
  /* What the socket had accepted and the peer had not read yet is gone with it. */
  if (c->connected) p->loss_epoch++;
  drop_pending(p);
  if (!live) return;
  uint64_t now = uv_now(t->loop);
  if (c->connected && now - c->connected_at_ms >= t->cfg.backoff_max_ms)
    p->backoff_ms = t->cfg.backoff_min_ms;
  p->retry_at_ms = now + p->backoff_ms;
  p->backoff_ms *= 2;
  if (p->backoff_ms > t->cfg.backoff_max_ms) p->backoff_ms = t->cfg.backoff_max_ms;
  rt_notify_unreachable(p);
  /* Nothing listens at the address of a peer whose connection just broke: its process is gone
   * (a host that died, or a partition, refuses nothing: the connect times out). */
  if (c->probe && !c->connected && c->connect_status == UV_ECONNREFUSED) {
    rt_log(t, 1, "peer %llx: its connection broke and its address refuses a new one",
           (unsigned long long)p->id);
    rt_notify_gone(p);
  }
  /* A connection the peer closed (or that failed) is opened again at the backoff time even
   * with nothing to send (a follower writes to its leader only in answer): the probe. Not
   * after one that carried nothing: a peer that refuses this member's handshakes is not
   * probed over and over. */
  if (c->connected && c->carried && !c->local_close) {
    p->probe_due = true;
    retry_arm(p);
  }
}

void rt_peer_close_conns(rt_peer *p) {
  rt_conn *m = p->msg, *s = p->snap;
  p->probe_due = false;
  if (m) {
    m->local_close = true;
    rt_conn_close(m, 0, NULL);
  }
  if (s) {
    s->local_close = true;
    rt_conn_close(s, 0, NULL);
  }
  drop_pending(p);
}

void rt_out_uncork(rt_peer *p) {
  rt_frame *head = p->cork_head;
  if (!head) return;
  p->cork_head = p->cork_tail = NULL;
  if (p->msg && p->msg->connected && !p->msg->closing) {
    rt_conn_write_list(p->msg, head);
    return;
  }
  rt_frame *tail = NULL; /* the connection went meanwhile: these count as failed sends */
  drop_list(p, &head, &tail);
}
