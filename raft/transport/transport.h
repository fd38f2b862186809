/* transport: raft messages between members over libuv TCP (see docs/raft.md §5.4), on the
 * caller's uv_loop and thread. Frames and the handshake are raft/transport/codec.h's.
 *
 * Connections. Each peer gets one outbound connection for messages, opened on the first send
 * and reopened after a failure with exponential backoff (backoff_min_ms doubling up to
 * backoff_max_ms); messages to a peer always travel on it, in the order sent. One that was
 * established and broke (not closed by this side) is opened again at the backoff time even with
 * nothing to send, and when the peer's address refuses that connection (ECONNREFUSED: no
 * process listens there) on_peer_gone(peer) follows. Snapshots travel
 * on a second outbound connection opened per snapshot, so heartbeats never wait behind one.
 * Inbound connections only receive: the first frame must be a handshake naming this cluster
 * and this member; a frame that is malformed, oversized, of another protocol version, from
 * another cluster or addressed to another member closes that one connection with one log line.
 *
 * Queues and loss. send() encodes at once (the caller keeps its message) into the peer's queue,
 * bounded by max_queue_bytes (bytes encoded but not yet written to the socket). A full queue
 * drops the message; a lost connection drops everything queued on it (nothing is replayed).
 * Either way on_unreachable(peer) follows; Raft tolerates the loss.
 *
 * Removed members. A handshake from a member that is_removed() names (removed from the
 * cluster, ids are never reused) is answered with a REMOVED frame and the connection closes
 * once it is written; a member that reads REMOVED naming itself on one of its outbound
 * connections gets on_removed() (etcd answers 410 Gone there, and the member stops).
 *
 * Snapshots. send() of a MSG_SNAP copies the snapshot, sends it in chunks of snap_chunk bytes,
 * and the receiver reassembles it and delivers one MSG_SNAP through on_message, then
 * acknowledges; on_snapshot_status(peer, ok) reports the ack, or a failure (connect or write
 * error, disconnect, receiver refusal, snap_timeout_ms). One snapshot per peer at a time: a
 * second one while the first is in flight fails at once.
 *
 * Callbacks run from the loop, never from inside a raft_transport_* call, and never after
 * raft_transport_stop. They may call any raft_transport_* function, including stop.
 * on_message's message and everything it points to is valid only during the call.
 *
 * Errors are negative errno (libuv's UV_E* on Linux are the same values). */
#ifndef QUORUM_RAFT_TRANSPORT_TRANSPORT_H
#define QUORUM_RAFT_TRANSPORT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "raft/core/raft.h"

typedef struct raft_transport raft_transport;

typedef struct raft_transport_config {
  uint64_t self_id;         /* this member, non-zero */
  uint64_t cluster_id;      /* both sides of a connection must agree */
  const char *listen_addr;  /* "host:port" (host numeric, or localhost; [v6]:port); port 0 picks
                               a free port (see raft_transport_listen_port); NULL: no listener */
  const char *bind_host;    /* source address of outgoing connections (numeric); NULL: any */
  size_t max_queue_bytes;   /* per peer; 0 = 4 MiB */
  size_t max_frame;         /* largest payload sent or accepted; 0 = RAFT_CODEC_DEFAULT_MAX_FRAME */
  size_t snap_chunk;        /* snapshot bytes per frame; 0 = 1 MiB; must leave 4 KiB under
                               max_frame for the rest of the frame */
  uint64_t max_snapshot;    /* largest snapshot accepted from a peer; 0 = 4 GiB */
  const char *snapshot_dir; /* a snapshot received is spooled to a nameless file here and
                               delivered mapped from it (file pages, not anonymous memory; the
                               space is reserved at its first chunk); NULL: in memory */
  unsigned backoff_min_ms;  /* 0 = 50 */
  unsigned backoff_max_ms;  /* 0 = 2000 */
  unsigned snap_timeout_ms; /* a snapshot not acknowledged in time fails; 0 = 120000 */
  raft_log_fn log;          /* may be NULL; levels as raft_config.log (0 debug .. 3 error) */
  void *log_arg;
  /* TLS (proto/tls_session): connections accepted on the listener run TLS with tls_server when
   * it is set; connections to a peer added as "https://host:port" run TLS with tls_client
   * (which must then be set), the peer's certificate checked against host. Both stay the
   * caller's, and must live until raft_transport_stop. */
  struct tls_session_ctx *tls_server;
  struct tls_session_ctx *tls_client;
} raft_transport_config;

typedef struct raft_transport_callbacks {
  void *arg;
  void (*on_message)(void *arg, const raft_message *m);
  void (*on_unreachable)(void *arg, uint64_t peer_id);
  void (*on_snapshot_status)(void *arg, uint64_t peer_id, bool ok);
  bool (*is_removed)(void *arg, uint64_t member_id); /* may be NULL: nobody is */
  void (*on_removed)(void *arg);                     /* may be NULL */
  /* May be NULL. The peer's process is gone: its message connection, established, broke, and
   * the connection opened again (the probe) was refused: nothing listens at its address. */
  void (*on_peer_gone)(void *arg, uint64_t peer_id);
  /* May be NULL. An HTTP GET on the peer port (etcd's peer handler answers GET /members
   * there, which etcd's v2 proxies read) gets the bytes this returns for its path (a whole
   * HTTP response, malloc'd; *len set), and the connection is then closed. */
  char *(*http_get)(void *arg, const char *path, size_t path_len, size_t *len);
} raft_transport_callbacks;

/* Per-peer counters (for /v2/stats). "Sent" counts what the socket accepted. */
typedef struct raft_transport_stats {
  uint64_t id;
  bool connected;            /* the outbound message connection is up */
  uint64_t msgs_sent, bytes_sent;
  uint64_t msgs_recv, bytes_recv;
  uint64_t append_sent, append_bytes_sent; /* MSG_APP only */
  uint64_t append_recv, append_bytes_recv;
  uint64_t send_failures;    /* messages dropped: queue full, too large, connection lost */
  uint64_t snapshots_sent, snapshot_failures;
  uint64_t rtt_us;           /* last heartbeat to heartbeat-response round trip; 0 = none yet */
  size_t queued_bytes;
} raft_transport_stats;

/* Starts listening (if cfg->listen_addr) on loop. cfg's strings are copied. Returns 0 and *out,
 * or -EINVAL (bad config or address), or a libuv bind/listen error (e.g. -EADDRINUSE); after a
 * bind/listen error the handles already opened are closing, so run the loop before closing it. */
int raft_transport_start(uv_loop_t *loop, const raft_transport_config *cfg,
                         const raft_transport_callbacks *cbs, raft_transport **out);
/* Closes every connection, timer and the listener, and drops everything queued; no callback
 * runs afterwards. The memory is released once the loop has run the close callbacks, so run
 * the loop (uv_run) before uv_loop_close. */
void raft_transport_stop(raft_transport *t);

/* The port the listener is bound to (useful with port 0), or 0. */
int raft_transport_listen_port(const raft_transport *t);

/* Peers. addr is "host:port" as for listen_addr, optionally prefixed by "http://" or
 * "https://" (TLS, see tls_client). add: -EEXIST if known, -EINVAL for a bad address or id, or
 * https without tls_client. update: new address; open connections are closed (to reconnect lazily).
 * remove: closes its connections, drops its queue; no callbacks for it afterwards. */
int raft_transport_add_peer(raft_transport *t, uint64_t id, const char *addr);
int raft_transport_update_peer(raft_transport *t, uint64_t id, const char *addr);
int raft_transport_remove_peer(raft_transport *t, uint64_t id);
/* Opens the message connection to peer id now, if there is none, though nothing is waiting
 * to be sent: a member that starts does so for each peer, and a peer whose connection to it
 * waits out a backoff (it was down) reconnects at once on seeing it (any handshake from a
 * peer does that), instead of up to backoff_max_ms later. -ENOENT for an unknown peer. */
int raft_transport_connect(raft_transport *t, uint64_t id);

/* Sends m to m->to. Returns 0 when queued (or silently dropped by the drop hook), -ENOENT for
 * an unknown peer, -EINVAL for a local-only type, -EMSGSIZE when the frame exceeds max_frame,
 * -ENOBUFS when the peer's queue is full (then on_unreachable follows), -ENOMEM. */
int raft_transport_send(raft_transport *t, const raft_message *m);

/* Between cork and uncork, messages to a connected peer are held, and uncork writes each
 * peer's held messages in one system call (writev): a ready batch's several messages to one
 * peer (a follower's answers to several appends) cost one write, not one each. */
void raft_transport_cork(raft_transport *t);
void raft_transport_uncork(raft_transport *t);

/* Fills *st for a known peer; -ENOENT otherwise. */
int raft_transport_peer_stats(const raft_transport *t, uint64_t id,
                              raft_transport_stats *st);

/* A count that rises whenever a message sent to peer id may have been lost: dropped (queue
 * full, too large), queued on a connection that failed, or accepted by a socket that was then
 * closed (the peer may not have read it). So a message sent when it was e and lost has raised
 * it above e (a rise does not say which message was lost). 0 for an unknown peer. */
uint64_t raft_transport_loss_epoch(const raft_transport *t, uint64_t id);

/* Test-only fault hook: resets the message connection to peer id (RST: the bytes the kernel
 * had not sent, and those the peer had not read, are lost; a new connection is opened at the
 * backoff time, as after any break). -ENOENT for an unknown peer. */
int raft_transport_break(raft_transport *t, uint64_t id);

/* Test-only fault hook: while on, everything to and from peer id is dropped silently (a
 * snapshot in flight to it fails). Returns -ENOENT for an unknown peer. */
int raft_transport_set_drop(raft_transport *t, uint64_t id, bool on);

/* Test-only fault hook: the next count messages of this type sent to peer id are dropped
 * silently, each with a log line, while the connection stays up (one lost message, one way;
 * count 0 cancels). Returns -ENOENT for an unknown peer, -EINVAL for a type not sent. */
int raft_transport_drop_next(raft_transport *t, uint64_t id, uint8_t type, unsigned count);

/* Parses "host:port" (numeric IPv4, [IPv6], or localhost). Returns 0 or -EINVAL. */
int raft_transport_parse_addr(const char *s, struct sockaddr_storage *out);

#endif
