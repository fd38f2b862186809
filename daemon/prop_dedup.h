/* prop_dedup: the requests a leader has appended in its term, for dropping a follower's second
 * forward of one it already holds.
 *
 * A follower forwards its clients' writes to the leader. When the connection that carried a
 * forward breaks (or the transport dropped it), the follower cannot tell whether the leader
 * read it, so it sends the forward again (node_resend.c); the leader appends a request only
 * the first time it sees it in its term. A term has one leader and a proposal carries the term
 * it was sent in, so forwards of other terms never meet this set (raft_propose_many).
 *
 * Keys are a 64-bit hash of (member, request id) with the log index they were appended at. A
 * key is kept for at least `window`, at most twice that (two generations, the older dropped
 * whole), which bounds memory; correctness does not rest on the time. A forward carries the
 * index its sender had applied (and answered) when it sent it, and its requests waiting then
 * are at later indexes if anywhere, so the leader can tell them apart exactly when it still
 * holds every key above that index (prop_dedup_covers); when it does not, it drops the forward
 * whole, and those requests time out as they would have without this.
 * No I/O, no clock: times are passed in. Not thread-safe (the raft thread owns it). */
#ifndef QUORUM_DAEMON_PROP_DEDUP_H
#define QUORUM_DAEMON_PROP_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prop_dedup_gen {
  uint64_t *v; /* open addressing, 0 = empty */
  size_t n, cap;
  uint64_t max_index; /* the highest index of a key in it */
} prop_dedup_gen;

typedef struct prop_dedup {
  uint64_t term;
  int64_t window_ns;
  int64_t gen_start_ns;
  uint64_t floor; /* every key appended at this index or above is kept */
  prop_dedup_gen cur, old;
} prop_dedup;

void prop_dedup_init(prop_dedup *d, int64_t window_ns);
void prop_dedup_free(prop_dedup *d);
/* Makes the set the one of term: a different term than the set's empties it. */
void prop_dedup_term(prop_dedup *d, uint64_t term);
/* Whether (member, id) was added and is still kept. */
bool prop_dedup_has(const prop_dedup *d, uint64_t member, uint64_t id);
/* Whether every key appended above `applied` is kept: then prop_dedup_has answers exactly for
 * requests that were not applied at `applied`. */
bool prop_dedup_covers(const prop_dedup *d, uint64_t applied);
/* Adds (member, id), appended at `index` (or an index above it), at now_ns (monotonic). 0, or
 * -ENOMEM (then nothing is covered any more: the floor is raised above index). */
int prop_dedup_add(prop_dedup *d, uint64_t member, uint64_t id, uint64_t index, int64_t now_ns);
/* How many keys are kept. */
size_t prop_dedup_count(const prop_dedup *d);

#endif
