/* quorum.c: majority arithmetic (raft.md §5: majority-only for now; joint consensus would add
 * a second majority here). The commit index is the median of the sorted match indexes: the
 * largest index that a majority has reached. */
#include <stdlib.h>

#include "raft/core/raft_i.h"

size_t raft_quorum_majority(size_t n) { return n / 2 + 1; }

uint64_t raft_quorum_commit_index(const uint64_t *match, size_t n) {
  if (n == 0) return UINT64_MAX; /* an empty config commits everything (by convention) */
  uint64_t s[RAFT_MAX_VOTERS];
  if (n > RAFT_MAX_VOTERS) RAFT_PANIC0("quorum of %zu voters", n);
  for (size_t i = 0; i < n; i++) s[i] = match[i];
  /* Insertion sort, descending: n <= 16. */
  for (size_t i = 1; i < n; i++) {
    uint64_t v = s[i];
    size_t j = i;
    while (j > 0 && s[j - 1] < v) {
      s[j] = s[j - 1];
      j--;
    }
    s[j] = v;
  }
  /* The majority-th largest value is reached by a majority. */
  return s[raft_quorum_majority(n) - 1];
}

raft_vote_result raft_quorum_vote_result(const int8_t *votes, size_t n) {
  if (n == 0) return RAFT_VOTE_WON;
  size_t yes = 0, no = 0, missing = 0;
  for (size_t i = 0; i < n; i++) {
    if (votes[i] > 0)
      yes++;
    else if (votes[i] == 0)
      no++;
    else
      missing++;
  }
  size_t q = raft_quorum_majority(n);
  if (yes >= q) return RAFT_VOTE_WON;
  if (yes + missing >= q) return RAFT_VOTE_PENDING;
  return RAFT_VOTE_LOST;
}
