/* msgpack_scan: a bound on what msgpack-c may allocate for untrusted bytes. */
#ifndef QUORUM_PROTO_MSGPACK_SCAN_H
#define QUORUM_PROTO_MSGPACK_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* Checks that p[0..n) is exactly one msgpack object in which every array or map announces no
 * more elements than there are bytes left (each element takes at least one byte), which
 * bounds what msgpack-c allocates to a small multiple of n. Returns 0 or -EINVAL. */
int proto_msgpack_scan(const uint8_t *p, size_t n);

#endif
