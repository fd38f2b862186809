/* transport_conn: one TCP connection of the transport, inbound or outbound — reading the byte
 * stream into whole frames (length-checked, decoded, handed to transport_in or transport_out),
 * writing encoded frames with their accounting, and closing exactly once. On a TLS connection
 * what is read is decrypted before it is framed, and each frame is encrypted before it is
 * written (its buffer then holds the records). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raft/transport/transport_i.h"

#define READ_SPACE (64u * 1024)

rt_frame *rt_frame_new(void) {
  return calloc(1, sizeof(rt_frame));
}

void rt_frame_free(rt_frame *f) {
  if (!f) return;
  free(f->buf.base);
  free(f);
}

rt_conn *rt_conn_new(raft_transport *t, uint8_t role, rt_peer *peer) {
  rt_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (uv_tcp_init(t->loop, &c->tcp) != 0) {
    free(c);
    return NULL;
  }
  t->handles++;
  c->tcp.data = c;
  c->t = t;
  c->role = role;
  c->peer = peer;
  if (peer) peer->refs++;
  return c;
}

static void conn_closed_cb(uv_handle_t *h) {
  rt_conn *c = h->data;
  raft_transport *t = c->t;
  rt_peer *p = c->peer;
  free(c->rbuf);
  tls_session_free(c->tls);
  free(c);
  if (p) {
    p->refs--;
    rt_peer_release(p);
  }
  rt_handle_closed(t);
}

static const char *role_name(uint8_t role) {
  switch (role) {
    case RT_CONN_IN: return "inbound";
    case RT_CONN_OUT_MSG: return "outbound";
    default: return "snapshot";
  }
}

void rt_conn_close(rt_conn *c, int level, const char *reason) {
  if (c->closing) return;
  c->closing = true;
  if (reason) {
    uint64_t who = c->role == RT_CONN_IN ? c->from : (c->peer ? c->peer->id : 0);
    rt_log(c->t, level, "closing %s connection (peer %llx): %s", role_name(c->role),
           (unsigned long long)who, reason);
  }
  if (c->role == RT_CONN_IN) rt_in_on_closed(c);
  else rt_out_on_closed(c);
  if (!c->reset || uv_tcp_close_reset(&c->tcp, conn_closed_cb) != 0)
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

/* A frame's bytes went out (status 0) or failed: the peer's queue and stats. */
static void frame_written(rt_conn *c, rt_frame *f, int status) {
  rt_peer *p = c->peer;
  if (c->role != RT_CONN_IN && p) {
    p->queued_bytes -= f->queued;
    if (status == 0) {
      p->stats.bytes_sent += f->buf.len;
      if (f->msg_type) {
        p->stats.msgs_sent++;
        if (f->msg_type == RAFT_MSG_APP) {
          p->stats.append_sent++;
          p->stats.append_bytes_sent += f->buf.len;
        }
      }
    } else if (f->msg_type) {
      p->stats.send_failures++;
    }
  }
}

static void write_cb(uv_write_t *req, int status) {
  rt_frame *f = (rt_frame *)req;
  rt_conn *c = f->conn;
  frame_written(c, f, status);
  bool chunk = f->kind == RAFT_CODEC_SNAP_CHUNK;
  bool last = f->kind == RAFT_CODEC_REMOVED, http = f->kind == RT_FRAME_HTTP;
  rt_frame_free(f);
  if (status < 0) {
    if (!c->closing) rt_conn_close(c, 1, uv_strerror(status));
    return;
  }
  if (last && !c->closing) rt_conn_close(c, 0, "told a removed member");
  if (http && !c->closing) rt_conn_close(c, 0, "answered an HTTP request");
  if (chunk && !c->closing) rt_snap_chunk_written(c);
}

/* Replaces a frame's bytes by their TLS records. Returns 0 or -1 (the session failed). */
static int tls_seal(rt_conn *c, rt_frame *f) {
  if (tls_session_write(c->tls, f->buf.base, f->buf.len)) return -1;
  size_t n = 0;
  const char *out = tls_session_output(c->tls, &n);
  uint8_t *enc = malloc(n ? n : 1);
  if (!enc) return -1;
  memcpy(enc, out, n);
  tls_session_output_clear(c->tls);
  free(f->buf.base);
  f->buf = (raft_codec_buf){enc, n, n};
  return 0;
}

/* Writes f's bytes as they are. */
static int write_raw(rt_conn *c, rt_frame *f) {
  f->conn = c;
  uv_buf_t b = uv_buf_init((char *)f->buf.base, (unsigned)f->buf.len);
  int rc = uv_write(&f->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
  if (rc < 0) {
    if (c->peer) {
      c->peer->queued_bytes -= f->queued;
      if (f->msg_type) c->peer->stats.send_failures++;
    }
    rt_frame_free(f);
    rt_conn_close(c, 1, uv_strerror(rc));
  }
  return rc;
}

/* Several frames in one write: the first frame's request carries them all. */
static void list_write_cb(uv_write_t *req, int status) {
  rt_frame *f = (rt_frame *)req;
  rt_conn *c = f->conn;
  while (f) {
    rt_frame *next = f->next;
    frame_written(c, f, status);
    rt_frame_free(f);
    f = next;
  }
  if (status < 0 && !c->closing) rt_conn_close(c, 1, uv_strerror(status));
}

/* The session failed: the alert it made goes out if the socket takes it now (the connection
 * closes at once), so that the other side learns why. */
static void tls_failed(rt_conn *c) {
  char why[300];
  snprintf(why, sizeof why, "TLS: %s", tls_session_error(c->tls));
  size_t n = 0;
  const char *alert = tls_session_output(c->tls, &n);
  if (n && !c->closing) {
    uv_buf_t b = uv_buf_init((char *)alert, (unsigned)n);
    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  }
  rt_conn_close(c, 2, why);
}

int rt_conn_write(rt_conn *c, rt_frame *f) {
  if (f->msg_type) c->carried = true;
  if (c->tls && tls_seal(c, f)) {
    if (c->peer) {
      c->peer->queued_bytes -= f->queued;
      if (f->msg_type) c->peer->stats.send_failures++;
    }
    rt_frame_free(f);
    tls_failed(c);
    return UV_EPROTO;
  }
  return write_raw(c, f);
}

/* Sends the records a TLS session made by itself (handshake, alerts). */
static int tls_flush(rt_conn *c) {
  size_t n = 0;
  const char *out = tls_session_output(c->tls, &n);
  if (!n) return 0;
  rt_frame *f = rt_frame_new();
  uint8_t *copy = f ? malloc(n) : NULL;
  if (!copy) {
    rt_frame_free(f);
    rt_conn_close(c, 3, "out of memory");
    return UV_ENOMEM;
  }
  memcpy(copy, out, n);
  tls_session_output_clear(c->tls);
  f->buf = (raft_codec_buf){copy, n, n};
  return write_raw(c, f);
}

int rt_conn_tls_start(rt_conn *c, struct tls_session_ctx *ctx, const char *host) {
  c->tls = tls_session_new(ctx, host);
  if (!c->tls) {
    rt_conn_close(c, 3, "TLS: out of memory");
    return -1;
  }
  if (!host) return 0; /* a server waits for the client's hello */
  if (tls_session_start(c->tls)) {
    tls_failed(c);
    return -1;
  }
  return tls_flush(c) < 0 ? -1 : 0;
}

int rt_conn_write_list(rt_conn *c, rt_frame *head) {
  if (!head->next) return rt_conn_write(c, head);
  c->carried = true;
  size_t n = 0;
  int rc = 0;
  for (rt_frame *f = head; f; f = f->next) {
    n++;
    if (c->tls && !rc && tls_seal(c, f)) rc = UV_EPROTO;
  }
  uv_buf_t stackbufs[16] = {{0}};
  uv_buf_t *bufs = rc ? NULL : n <= 16 ? stackbufs : malloc(n * sizeof *bufs);
  if (!rc && !bufs) rc = UV_ENOMEM;
  size_t i = 0;
  for (rt_frame *f = head; f; f = f->next) {
    f->conn = c;
    if (bufs) bufs[i++] = uv_buf_init((char *)f->buf.base, (unsigned)f->buf.len);
  }
  /* (uv_write copies the buffer array: it may live on the stack) */
  if (!rc) rc = uv_write(&head->req, (uv_stream_t *)&c->tcp, bufs, (unsigned)n, list_write_cb);
  if (bufs != stackbufs) free(bufs);
  if (rc < 0) {
    for (rt_frame *f = head; f;) {
      rt_frame *next = f->next;
      frame_written(c, f, rc);
      rt_frame_free(f);
      f = next;
    }
    if (rc == UV_EPROTO) tls_failed(c);
    else rt_conn_close(c, 1, uv_strerror(rc));
  }
  return rc;
}

/* Room for READ_SPACE more bytes in rbuf. Returns 0 or -1. */
static int rbuf_reserve(rt_conn *c) {
  if (c->rcap - c->rlen < READ_SPACE) {
    size_t cap = c->rcap ? c->rcap : READ_SPACE;
    while (cap - c->rlen < READ_SPACE) cap *= 2;
    uint8_t *p = realloc(c->rbuf, cap);
    if (!p) return -1;
    c->rbuf = p;
    c->rcap = cap;
  }
  return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  rt_conn *c = h->data;
  (void)suggested;
  if (c->tls) { /* ciphertext goes to the transport's buffer, decrypted before read_cb returns */
    *buf = uv_buf_init((char *)c->t->tls_rbuf, sizeof c->t->tls_rbuf);
    return;
  }
  if (rbuf_reserve(c)) {
    *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
    return;
  }
  *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

/* Splits the bytes read into frames and dispatches them until the connection closes. */
static void conn_process(rt_conn *c) {
  raft_transport *t = c->t;
  size_t pos = 0;
  if (c->http) {
    c->rlen = 0;
    return;
  }
  if (c->role == RT_CONN_IN && !c->handshaken && c->rlen >= 4 && !memcmp(c->rbuf, "GET ", 4)) {
    rt_in_http(c);
    return;
  }
  while (!c->closing && !t->stopping) {
    size_t n = 0;
    int rc = raft_codec_frame_peek(c->rbuf + pos, c->rlen - pos, t->cfg.max_frame, &n);
    if (rc == -EMSGSIZE) {
      rt_conn_close(c, 2, "oversized frame");
      break;
    }
    if (rc < 0) {
      rt_conn_close(c, 2, "empty frame");
      break;
    }
    if (rc == 0) break;
    raft_codec_frame f;
    const uint8_t *payload = c->rbuf + pos + RAFT_CODEC_HEADER_LEN;
    pos += RAFT_CODEC_HEADER_LEN + n;
    rc = raft_codec_decode(payload, n, &f);
    if (rc == -EPROTONOSUPPORT) {
      rt_conn_close(c, 2, "frame of another protocol version");
      break;
    }
    if (rc == -ENOMEM) {
      rt_conn_close(c, 3, "out of memory decoding a frame");
      break;
    }
    if (rc < 0) {
      rt_conn_close(c, 2, "malformed frame");
      break;
    }
    if (c->role == RT_CONN_IN) rt_in_on_frame(c, &f, RAFT_CODEC_HEADER_LEN + n);
    else rt_out_on_frame(c, &f);
  }
  /* rbuf lives until the close callback, so compacting after a close is harmless. */
  if (pos) {
    memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
  }
}

/* A TLS connection's ciphertext (in t->tls_rbuf): into the session, every decrypted byte into
 * rbuf, the session's own records out; the first time the handshake is done an outbound
 * connection becomes usable. Then the frames. */
static void tls_read(rt_conn *c, size_t n) {
  if (tls_session_feed(c->tls, c->t->tls_rbuf, n)) {
    tls_failed(c);
    return;
  }
  for (;;) {
    if (rbuf_reserve(c)) {
      rt_conn_close(c, 3, "out of memory reading");
      return;
    }
    ssize_t k = tls_session_read(c->tls, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (k == 0) break;
    if (k == -2) {
      rt_conn_close(c, 0, "closed by the other side");
      return;
    }
    if (k < 0) {
      tls_failed(c);
      return;
    }
    c->rlen += (size_t)k;
  }
  if (tls_flush(c) < 0 || c->closing) return;
  if (!c->tls_ready && tls_session_ready(c->tls)) {
    c->tls_ready = true;
    if (c->role != RT_CONN_IN) rt_out_on_tls_ready(c);
    if (c->closing) return;
  }
  conn_process(c);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  rt_conn *c = s->data;
  (void)buf;
  if (c->closing) return;
  if (nread < 0) {
    if (nread == UV_EOF) rt_conn_close(c, 0, "closed by the other side");
    else rt_conn_close(c, 1, uv_strerror((int)nread));
    return;
  }
  if (c->tls) {
    tls_read(c, (size_t)nread);
    return;
  }
  c->rlen += (size_t)nread;
  conn_process(c);
}

int rt_conn_start_read(rt_conn *c) {
  int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  if (rc < 0) rt_conn_close(c, 1, uv_strerror(rc));
  return rc;
}
