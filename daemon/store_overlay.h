/* store_overlay: the node writes of the group being applied that are not yet in LevelDB, so
 * that records later in the same group read them (one WriteBatch per group, not per record). */
#ifndef QUORUM_DAEMON_STORE_OVERLAY_H
#define QUORUM_DAEMON_STORE_OVERLAY_H

#include <stddef.h>

typedef struct overlay_entry {
  char *key;
  size_t klen;
  char *val; /* NULL: deleted */
  size_t vlen;
} overlay_entry;

typedef struct overlay {
  overlay_entry *slots;
  size_t nslots, used;
} overlay;

/* Records key -> val (val NULL for a delete), replacing an earlier entry. Copies both. */
void overlay_set(overlay *o, const char *key, size_t klen, const char *val, size_t vlen);
/* The entry for key, or NULL when the overlay does not know the key. */
const overlay_entry *overlay_get(const overlay *o, const char *key, size_t klen);
/* Forgets every entry (keeps the table). */
void overlay_clear(overlay *o);
void overlay_free(overlay *o);

#endif
