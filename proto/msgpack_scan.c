/* msgpack_scan: the check every msgpack decoder here makes before msgpack-c unpacks bytes
 * from a peer, a client or the disk. msgpack-c allocates every array and map at the size its
 * header announces, so a few bytes could ask it for gigabytes. */
#include "proto/msgpack_scan.h"

#include <errno.h>

static uint64_t read_be(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

int proto_msgpack_scan(const uint8_t *p, size_t n) {
  uint64_t pending = 1;
  size_t off = 0;
  while (pending) {
    if (off >= n) return -EINVAL;
    uint8_t c = p[off++];
    uint64_t skip = 0, items = 0;
    size_t lenlen = 0; /* bytes of a length field that follows c */
    pending--;
    if (c <= 0x7f || c >= 0xe0) {
      /* positive or negative fixint */
    } else if (c <= 0x8f) {
      items = 2u * (c & 0x0f);
    } else if (c <= 0x9f) {
      items = c & 0x0f;
    } else if (c <= 0xbf) {
      skip = c & 0x1f;
    } else {
      switch (c) {
        case 0xc0: case 0xc2: case 0xc3: break;
        case 0xc4: case 0xd9: lenlen = 1; break;
        case 0xc5: case 0xda: lenlen = 2; break;
        case 0xc6: case 0xdb: lenlen = 4; break;
        case 0xc7: lenlen = 1; skip = 1; break;
        case 0xc8: lenlen = 2; skip = 1; break;
        case 0xc9: lenlen = 4; skip = 1; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xd4: skip = 2; break;
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: case 0xdd: case 0xde: case 0xdf: {
          size_t w = (c == 0xdc || c == 0xde) ? 2 : 4;
          if (n - off < w) return -EINVAL;
          items = read_be(p + off, w);
          if (c >= 0xde) items *= 2;
          off += w;
          break;
        }
        default: return -EINVAL; /* 0xc1, never used */
      }
      if (lenlen) {
        if (n - off < lenlen) return -EINVAL;
        skip += read_be(p + off, lenlen);
        off += lenlen;
      }
    }
    if (skip > n - off) return -EINVAL;
    off += (size_t)skip;
    pending += items;
    if (pending > n - off) return -EINVAL;
  }
  return off == n ? 0 : -EINVAL;
}
