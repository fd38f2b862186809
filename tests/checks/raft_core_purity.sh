#!/bin/bash
# The raft core is a pure state machine: no I/O headers, no clock, no rand(). (raft.md §5)
# Comments are stripped first (gcc -fpreprocessed), so prose may name what code must not use.
set -u
dir="$1/raft/core"
status=0
n=0
for f in "$dir"/*.c "$dir"/*.h; do
  [ -e "$f" ] || continue
  n=$((n + 1))
  bad=$(gcc -fpreprocessed -dD -E -P -x c "$f" 2>/dev/null |
        grep -nE '#include *<(uv|leveldb/c|msgpack|unistd|time|pthread|sys/[a-z_]+)\.h>|\b(rand|srand|random|time|clock_gettime|gettimeofday|printf|fprintf|fopen|read|write|sleep|usleep|getenv)\s*\(')
  if [ -n "$bad" ]; then
    echo "$f: raft/core must stay pure (no I/O, clock or rand):"
    echo "$bad"
    status=1
  fi
done
[ $status = 0 ] && echo "raft/core is pure: $n files checked"
exit $status
