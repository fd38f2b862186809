/* transport_i: the transport's internal structures, shared by transport.c (lifecycle, peers,
 * send, callbacks), transport_conn.c (one TCP connection: framing, writes, close),
 * transport_out.c (outbound connections, backoff, snapshot sending) and transport_in.c
 * (listener, inbound handshake checks, delivery, snapshot reassembly).
 *
 * Lifetime: the transport, each peer and each connection own uv handles; t->handles counts the
 * open ones and the last close callback after raft_transport_stop frees the transport. A peer
 * is freed after remove_peer (or stop) once its timers and every connection naming it have
 * closed (refs); a connection is freed in its close callback. */
#ifndef QUORUM_RAFT_TRANSPORT_TRANSPORT_I_H
#define QUORUM_RAFT_TRANSPORT_TRANSPORT_I_H

#include "proto/tls_session.h"
#include "raft/transport/codec.h"
#include "raft/transport/transport.h"

typedef struct rt_peer rt_peer;
typedef struct rt_conn rt_conn;

typedef enum rt_conn_role {
  RT_CONN_IN = 0,   /* accepted; receives messages or a snapshot, sends acks */
  RT_CONN_OUT_MSG,  /* ours, to a peer, for messages */
  RT_CONN_OUT_SNAP, /* ours, to a peer, for one snapshot */
} rt_conn_role;

/* One encoded frame being written (or waiting for its connection). */
typedef struct rt_frame {
  uv_write_t req;
  struct rt_frame *next;
  rt_conn *conn;
  size_t queued;     /* bytes counted in the peer's queue (0 for control frames, chunks) */
  uint8_t kind;      /* raft_codec_kind */
  uint8_t msg_type;  /* the raft message type, 0 for other frames */
  raft_codec_buf buf;
} rt_frame;

/* A snapshot being received on an inbound connection. */
typedef struct rt_snap_in {
  bool active;
  bool mapped;   /* data is a shared mapping of a spool file (cfg.snapshot_dir), not malloc'd */
  uint64_t snap_id, total, next_off;
  uint8_t *data; /* cap bytes, next_off of them received */
  uint64_t cap;
  raft_codec_frame first; /* the chunk at offset 0, owning the MSG_SNAP message */
} rt_snap_in;

struct rt_conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  raft_transport *t;
  rt_peer *peer;  /* outbound only */
  uint8_t role;   /* rt_conn_role */
  bool connected, closing;
  bool reset;     /* closed with a reset (RST): unsent bytes are dropped (test hook) */
  bool probe;       /* outbound messages: the first one opened after an established one broke */
  bool local_close; /* closed by this side on purpose (peer updated or removed, stop) */
  bool carried;     /* a raft message was written on it */
  int connect_status; /* the failed connect's status (UV_E*), 0 otherwise */
  uint64_t connected_at_ms;
  uint8_t *rbuf;  /* bytes read, not yet a whole frame */
  size_t rlen, rcap;
  tls_session *tls; /* on a TLS connection */
  bool tls_ready;   /* its handshake is done */
  /* inbound */
  bool handshaken;
  bool refused; /* told it is removed: what it sends next is dropped until the close */
  bool http;    /* an HTTP request, answered: the rest is ignored until the close */
  uint64_t from;
  rt_snap_in snap_in;
  rt_conn *prev, *next; /* t->inbound list */
};

/* A snapshot being sent to a peer. */
typedef struct rt_snap_out {
  bool active;
  bool acked_wait; /* every chunk written; waiting for the receiver's ack */
  uint64_t snap_id, off;
  raft_message msg;  /* the MSG_SNAP (no entries, no context kept) */
  raft_snapshot snap; /* meta, and data copied (owned) */
  uv_timer_t timer;  /* snap_timeout_ms */
} rt_snap_out;

struct rt_peer {
  raft_transport *t;
  uint64_t id;
  struct sockaddr_storage addr;
  bool tls;                 /* added as https://: connections to it run TLS */
  char host[64];            /* the host of its address, which its certificate must match */
  rt_conn *msg;             /* outbound message connection, or NULL */
  rt_conn *snap;            /* outbound snapshot connection, or NULL */
  rt_frame *pending_head;   /* frames waiting for msg to connect */
  rt_frame *pending_tail;
  rt_frame *cork_head;      /* frames held while the transport is corked */
  rt_frame *cork_tail;
  uv_timer_t retry_timer;
  bool retry_armed;
  uint64_t backoff_ms;
  uint64_t retry_at_ms;
  size_t queued_bytes;
  bool drop;
  uint8_t drop_type;        /* drop_next: the next drop_count messages of this type */
  unsigned drop_count;
  bool removed;
  int open_timers;          /* retry_timer and snap_out.timer until closed */
  int refs;                 /* connections whose peer this is (until their close callback) */
  bool probe_due;           /* the message connection broke: open one again at retry_at_ms even
                               with nothing to send, to learn whether the peer still listens */
  bool notify_unreachable;  /* deferred callbacks */
  bool notify_gone;
  int notify_snap;          /* 0 none, 1 ok, -1 failed */
  uint64_t hb_sent_ns;
  uint64_t loss_epoch;      /* raised whenever a message to the peer may have been lost */
  rt_snap_out snap_out;
  raft_transport_stats stats;
};

struct raft_transport {
  uv_loop_t *loop;
  raft_transport_config cfg;
  char *listen_addr, *bind_host; /* copies */
  struct sockaddr_storage bind_addr;
  bool has_bind;
  raft_transport_callbacks cbs;
  uv_tcp_t listener;
  bool listening;
  uv_timer_t notify_timer;
  bool notify_armed;
  rt_peer **peers;
  size_t n_peers, cap_peers;
  rt_conn *inbound;
  uint64_t next_snap_id;
  int handles; /* open uv handles owned by the transport, its peers and connections */
  bool stopping;
  bool corked;  /* raft_transport_cork: frames to connected peers are held */
  uint8_t tls_rbuf[64 * 1024]; /* ciphertext read from a TLS connection, decrypted at once */
};

/* transport.c */
void rt_log(raft_transport *t, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
rt_peer *rt_peer_find(const raft_transport *t, uint64_t id);
/* Frees a removed peer once its timers and connections are all closed. */
void rt_peer_release(rt_peer *p);
void rt_notify_unreachable(rt_peer *p);
void rt_notify_gone(rt_peer *p);
void rt_notify_snapshot(rt_peer *p, bool ok);
void rt_handle_closed(raft_transport *t);
void rt_frame_free(rt_frame *f);

/* transport_conn.c */
rt_conn *rt_conn_new(raft_transport *t, uint8_t role, rt_peer *peer);
int rt_conn_start_read(rt_conn *c);
/* Writes f on c (c takes f); on failure closes c. Returns 0 or the error. */
int rt_conn_write(rt_conn *c, rt_frame *f);
/* Writes the list of frames from head (linked by next) on c in one writev (c takes them). */
int rt_conn_write_list(rt_conn *c, rt_frame *head);
/* Closes c once, with the effects on its peer; logs reason at level (reason NULL: quiet). */
void rt_conn_close(rt_conn *c, int level, const char *reason);
/* Starts TLS on c with ctx (host: what the other side's certificate must match, NULL for an
 * inbound connection); a client sends its first handshake record. Returns 0 or -1 (closed). */
int rt_conn_tls_start(rt_conn *c, struct tls_session_ctx *ctx, const char *host);
rt_frame *rt_frame_new(void);

/* transport_out.c */
void rt_out_send_frame(rt_peer *p, rt_frame *f);
/* The peer opened a connection to us: it is up. A message connection to it waiting out its
 * backoff is opened now, and the next one after a failure at the least backoff. */
void rt_out_peer_alive(rt_peer *p);
/* Opens the message connection to p now if it has none (nothing need be waiting). */
void rt_out_connect(rt_peer *p);
/* Writes the frames held for p while corked. */
void rt_out_uncork(rt_peer *p);
void rt_out_on_closed(rt_conn *c);
void rt_out_on_frame(rt_conn *c, raft_codec_frame *f);
/* The connection's TLS handshake completed (outbound): it is now usable. */
void rt_out_on_tls_ready(rt_conn *c);
int rt_snap_send(rt_peer *p, const raft_message *m);
void rt_snap_chunk_written(rt_conn *c);
void rt_snap_abort(rt_peer *p, bool notify);
void rt_peer_close_conns(rt_peer *p);

/* transport_in.c */
int rt_in_listen(raft_transport *t, const struct sockaddr *addr);
void rt_in_close_listener(raft_transport *t);
void rt_in_on_frame(rt_conn *c, raft_codec_frame *f, size_t frame_bytes);
void rt_in_on_closed(rt_conn *c);
/* An inbound connection whose first bytes are "GET ": answers once the head is in. */
void rt_in_http(rt_conn *c);
/* rt_frame.kind of an HTTP answer: the connection closes once it is written. */
#define RT_FRAME_HTTP 0xfe

#endif
