/* export_read: reading back what `quorumctl export` writes, values byte for byte (NUL bytes
 * included, which yajl's tree would cut). */
#ifndef QUORUM_CTL_EXPORT_READ_H
#define QUORUM_CTL_EXPORT_READ_H

#include <stddef.h>

typedef struct ctl_export_entry {
  char *path;       /* below the export's prefix ("" for the prefix itself) */
  char *value;      /* files: value_len bytes (NUL-terminated too); NULL for directories */
  size_t value_len;
  int dir;
  int has_ttl;
  long long ttl;
} ctl_export_entry;

/* Reads TEXT: 0 with its entries in *out (ctl_export_free), or -1 when it is not an export
 * (not JSON, no "entries" array, an entry without a string path, a file without a string
 * value, a ttl that is not an integer). */
int ctl_export_read(const char *text, ctl_export_entry **out, size_t *n);
void ctl_export_free(ctl_export_entry *v, size_t n);

#endif
