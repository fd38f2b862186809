/* describe.c: one-line text forms of messages, entries, hard and conf states, snapshot metas,
 * statuses, types and roles for logs, traces and golden tests. One format everywhere:
 *   "1->2 MsgApp Term:2 Log:1/3 Commit:2 Entries:[2/4 EntryNormal 3B]"
 *   "2->1 MsgAppResp Term:2 Log:0/3 Rejected (Hint: 2/1)"
 * Only snprintf: the core does no I/O. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "raft/core/raft_i.h"

const char *raft_msg_type_name(uint8_t type) {
  static const char *const names[RAFT_MSG_TYPE_MAX] = {
      [RAFT_MSG_HUP] = "MsgHup",
      [RAFT_MSG_BEAT] = "MsgBeat",
      [RAFT_MSG_CHECK_QUORUM] = "MsgCheckQuorum",
      [RAFT_MSG_UNREACHABLE] = "MsgUnreachable",
      [RAFT_MSG_SNAP_STATUS] = "MsgSnapStatus",
      [RAFT_MSG_PROP] = "MsgProp",
      [RAFT_MSG_APP] = "MsgApp",
      [RAFT_MSG_APP_RESP] = "MsgAppResp",
      [RAFT_MSG_VOTE] = "MsgVote",
      [RAFT_MSG_VOTE_RESP] = "MsgVoteResp",
      [RAFT_MSG_PRE_VOTE] = "MsgPreVote",
      [RAFT_MSG_PRE_VOTE_RESP] = "MsgPreVoteResp",
      [RAFT_MSG_SNAP] = "MsgSnap",
      [RAFT_MSG_HEARTBEAT] = "MsgHeartbeat",
      [RAFT_MSG_HEARTBEAT_RESP] = "MsgHeartbeatResp",
      [RAFT_MSG_TIMEOUT_NOW] = "MsgTimeoutNow",
      [RAFT_MSG_TRANSFER_LEADER] = "MsgTransferLeader",
      [RAFT_MSG_READ_INDEX] = "MsgReadIndex",
      [RAFT_MSG_READ_INDEX_RESP] = "MsgReadIndexResp",
  };
  if (type < RAFT_MSG_TYPE_MAX && names[type]) return names[type];
  return "MsgUnknown";
}

/* Names as etcd's /v2/stats/self "state" shows them. */
const char *raft_role_name(uint8_t role) {
  switch (role) {
    case RAFT_FOLLOWER: return "StateFollower";
    case RAFT_PRE_CANDIDATE: return "StatePreCandidate";
    case RAFT_CANDIDATE: return "StateCandidate";
    case RAFT_LEADER: return "StateLeader";
    default: return "StateUnknown";
  }
}

typedef struct out {
  char *buf;
  size_t len, at;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...) {
  if (o->at >= o->len) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(o->buf + o->at, o->len - o->at, fmt, ap);
  va_end(ap);
  if (k < 0) return;
  o->at += (size_t)k;
  if (o->at >= o->len) o->at = o->len - 1;
}

static void put_bytes(out *o, const raft_buf *b) {
  /* Short printable data is shown as text (handy in tests), the rest as a size. */
  bool printable = b->len > 0 && b->len <= 32;
  for (size_t i = 0; printable && i < b->len; i++)
    printable = b->base[i] >= 0x20 && b->base[i] < 0x7f && b->base[i] != '"';
  if (printable)
    put(o, "\"%.*s\"", (int)b->len, (const char *)b->base);
  else
    put(o, "%zuB", b->len);
}

/* "term/index EntryType data"; with decode_cc, a conf change shows as "AddNode:4" instead of its
 * encoded size. */
static void put_entry(out *o, const raft_entry *e, bool decode_cc) {
  put(o, "%llu/%llu %s", (unsigned long long)e->term, (unsigned long long)e->index,
      e->type == RAFT_ENTRY_CONF_CHANGE ? "EntryConfChange" : "EntryNormal");
  raft_conf_change cc;
  if (decode_cc && e->type == RAFT_ENTRY_CONF_CHANGE &&
      raft_conf_change_decode(e->data.base, e->data.len, &cc) == RAFT_OK) {
    static const char *const kinds[] = {"AddNode", "RemoveNode", "UpdateNode"};
    put(o, " %s:%llx", cc.type < 3 ? kinds[cc.type] : "Unknown", (unsigned long long)cc.node_id);
    return;
  }
  if (e->data.len) {
    put(o, " ");
    put_bytes(o, &e->data);
  }
}

static void put_voters(out *o, const raft_conf_state *cs) {
  put(o, "Voters:[");
  for (size_t i = 0; i < cs->n_voters && i < RAFT_MAX_VOTERS; i++)
    put(o, "%s%llx", i ? " " : "", (unsigned long long)cs->voters[i]);
  put(o, "]");
}

static void put_snapshot_meta(out *o, const raft_snapshot_meta *s) {
  put(o, "Index:%llu Term:%llu ", (unsigned long long)s->index, (unsigned long long)s->term);
  put_voters(o, &s->conf);
}

const char *raft_describe_message(const raft_message *m, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  out o = {buf, len, 0};
  buf[0] = 0;
  put(&o, "%llx->%llx %s Term:%llu Log:%llu/%llu", (unsigned long long)m->from,
      (unsigned long long)m->to, raft_msg_type_name(m->type), (unsigned long long)m->term,
      (unsigned long long)m->log_term, (unsigned long long)m->index);
  if (m->reject) {
    put(&o, " Rejected");
    if (m->type == RAFT_MSG_APP_RESP)
      put(&o, " (Hint: %llu/%llu)", (unsigned long long)m->reject_hint,
          (unsigned long long)m->reject_hint_term);
  }
  if (m->commit) put(&o, " Commit:%llu", (unsigned long long)m->commit);
  if (m->n_entries > 0 && m->entries) {
    put(&o, " Entries:[");
    for (size_t i = 0; i < m->n_entries; i++) {
      if (i) put(&o, ", ");
      put_entry(&o, &m->entries[i], false);
    }
    put(&o, "]");
  }
  if (m->snapshot) {
    put(&o, " Snapshot: ");
    put_snapshot_meta(&o, &m->snapshot->meta);
    put(&o, " Data:%zuB", m->snapshot->data.len);
  }
  if (m->context.len) {
    put(&o, " Context:");
    put_bytes(&o, &m->context);
  }
  return buf;
}

const char *raft_describe_entry(const raft_entry *e, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  out o = {buf, len, 0};
  buf[0] = 0;
  put_entry(&o, e, true);
  return buf;
}

const char *raft_describe_hard_state(const raft_hard_state *hs, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  out o = {buf, len, 0};
  buf[0] = 0;
  put(&o, "Term:%llu Vote:%llx Commit:%llu", (unsigned long long)hs->term,
      (unsigned long long)hs->vote, (unsigned long long)hs->commit);
  return buf;
}

const char *raft_describe_conf_state(const raft_conf_state *cs, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  out o = {buf, len, 0};
  buf[0] = 0;
  put_voters(&o, cs);
  return buf;
}

const char *raft_describe_snapshot_meta(const raft_snapshot_meta *s, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  out o = {buf, len, 0};
  buf[0] = 0;
  put_snapshot_meta(&o, s);
  return buf;
}

const char *raft_describe_status(const raft_status *st, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  out o = {buf, len, 0};
  buf[0] = 0;
  put(&o, "%llx %s Term:%llu Vote:%llx Lead:%llx Commit:%llu Applied:%llu Last:%llu ",
      (unsigned long long)st->id, raft_role_name(st->role), (unsigned long long)st->term,
      (unsigned long long)st->vote, (unsigned long long)st->lead, (unsigned long long)st->commit,
      (unsigned long long)st->applied, (unsigned long long)st->last_index);
  put_voters(&o, &st->conf);
  if (st->lead_transferee) put(&o, " Transferee:%llx", (unsigned long long)st->lead_transferee);
  return buf;
}

const char *raft_describe_peer(const raft_peer_status *p, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  out o = {buf, len, 0};
  buf[0] = 0;
  put(&o, "%llx: %s Match:%llu Next:%llu%s", (unsigned long long)p->id,
      raft_progress_state_name(p->state), (unsigned long long)p->match,
      (unsigned long long)p->next, p->recent_active ? " RecentActive" : "");
  return buf;
}
