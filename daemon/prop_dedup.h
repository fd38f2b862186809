/* prop_dedup: the requests a leader has appended in its term, for dropping a follower's second
 * forward of one it already holds.
 *
 * A follower forwards its clients' writes to the leader. When the connection that carried a
 * forward breaks (or the transport dropped it), the follower cannot tell whether the leader
 * read it, so it sends the forward again (node_resend.c); the leader appends a request only
 * the first time it sees it in its term. A term has one leader and a proposal carries the term
 * it was sent in, so forwards of other terms never meet this set (raft_propose_many).
 *
 * Keys are a 64-bit hash of (member, request id). A key is kept for at least `window`, at
 * most twice that (two generations, the older dropped whole), which bounds memory; correctness
 * does not rest on the time. A forward carries an index below which none of its requests can
 * be in the log (raft_propose_many_at), so the leader tells them apart exactly while it holds
 * every key of that member appended above that index (prop_dedup_covers); when it does not,
 * it drops the forward whole, and those requests time out as they would have without this.
 * Floors are kept per member: a member's forwards are judged by what was forgotten of its own
 * requests (a follower that was stalled while others' keys were forgotten is not refused).
 * No I/O, no clock: times are passed in. Not thread-safe (the raft thread owns it). */
#ifndef QUORUM_DAEMON_PROP_DEDUP_H
#define QUORUM_DAEMON_PROP_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per member: an index (a generation's highest key index, or a floor). Members beyond the
 * table's room go to `all`, which counts for every member: judged together, still safely. */
#define PROP_DEDUP_MEMBERS 16
typedef struct prop_dedup_marks {
  uint64_t member[PROP_DEDUP_MEMBERS];
  uint64_t index[PROP_DEDUP_MEMBERS];
  size_t n;
  uint64_t all;
} prop_dedup_marks;

typedef struct prop_dedup_gen {
  uint64_t *v; /* open addressing, 0 = empty */
  size_t n, cap;
  prop_dedup_marks max; /* per member, the highest index of its keys here */
} prop_dedup_gen;

typedef struct prop_dedup {
  uint64_t term;
  int64_t window_ns;
  int64_t gen_start_ns;
  prop_dedup_marks floor; /* per member: its keys appended at this index or above are kept */
  prop_dedup_gen cur, old;
} prop_dedup;

void prop_dedup_init(prop_dedup *d, int64_t window_ns);
void prop_dedup_free(prop_dedup *d);
/* Makes the set the one of term: a different term than the set's empties it. */
void prop_dedup_term(prop_dedup *d, uint64_t term);
/* Whether (member, id) was added and is still kept. */
bool prop_dedup_has(const prop_dedup *d, uint64_t member, uint64_t id);
/* Whether every key of member appended above `below` is kept: then prop_dedup_has answers
 * exactly for its requests that cannot be in the log at or below `below`. */
bool prop_dedup_covers(const prop_dedup *d, uint64_t member, uint64_t below);
/* Adds (member, id), appended at `index` (or an index above it), at now_ns (monotonic). 0, or
 * -ENOMEM (then the member's floor is raised above index: its forwards from before are
 * refused). */
int prop_dedup_add(prop_dedup *d, uint64_t member, uint64_t id, uint64_t index, int64_t now_ns);
/* How many keys are kept. */
size_t prop_dedup_count(const prop_dedup *d);

#endif
