/* fs_handle: one open file. Its value is a private whole-value buffer: reads come from the
 * snapshot taken at open, writes edit the buffer, and the new value reaches the store once,
 * whole, at flush or fsync (fs_handle_push), with the concurrency check the open chose. */
#ifndef QUORUM_FS_HANDLE_H
#define QUORUM_FS_HANDLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/fs.h"
#include "fs/fs_store.h"

/* How the buffer goes to the store. */
typedef enum fs_push {
  FS_PUSH_CAS,     /* read-modify-write: PUT prevIndex=<modifiedIndex at open>; 101 -> ESTALE */
  FS_PUSH_REPLACE, /* opened with O_TRUNC: PUT prevExist=true */
  FS_PUSH_CREATE,  /* created locally: PUT prevExist=false (105 -> a replace) */
  FS_PUSH_POST,    /* FS_POST_NAME: POST to the directory */
} fs_push;

/* The largest value a write may make: etcd and quorumd refuse a form past 10 MiB (Go's
 * ParseForm limit), so a file past it fails with EFBIG at the write that makes it so, not at
 * close. (A value of that size escaped in the form can still be too large: EFBIG at close.) */
#define FS_MAX_VALUE (10u << 20)

typedef struct fs_handle {
  fs_node *node;
  char *buf;
  size_t len, cap;
  size_t utf8_ok;       /* buf[0, utf8_ok) is known to be UTF-8, ending between characters */
  int dirty;
  int written;          /* dirty by write/ftruncate, not only by O_TRUNC or a create */
  int append;
  int self;             /* opened by the applier (a replay): never pushed */
  int flushed;          /* dirty only by O_TRUNC or a create when its opener closed a
                         * descriptor: due now, sent at RELEASE or at the next use of the key */
  int orphan;           /* its name was removed here: what is written goes nowhere, as in an
                         * unlinked open file */
  int pushing;          /* a push is on the network (the mount's lock released) */
  int too_big;          /* a write went past FS_MAX_VALUE (EFBIG): the close stores nothing */
  fs_push push;
  uint64_t base_index;  /* modifiedIndex the buffer was read at (FS_PUSH_CAS) */
  uint64_t created_index; /* O_EXCL: the index of the empty key this open created, until a
                           * value is stored through it (0 otherwise) */
  double expires_at;    /* the node's TTL at open (kept on rewrite); 0 = none */
  struct fs_handle *next; /* in node->handles */
} fs_handle;

/* A handle on NODE, linked into node->handles, with a copy of VALUE. NULL on out-of-memory. */
fs_handle *fs_handle_new(fs_node *node, const char *value, size_t len);
void fs_handle_free(fs_handle *h);

/* Writes DATA at OFF (at the end for O_APPEND handles), zero-filling a gap. Returns 0 or an
 * errno: EILSEQ when the buffer now holds bytes that are not UTF-8 and cannot become UTF-8
 * by what follows them (the value would be refused at close anyway; a shell's redirection
 * reports a write error where it ignores close's). */
int fs_handle_write(fs_handle *h, const char *data, size_t size, off_t off);

/* Sets the buffer's length, zero-filling when it grows. Returns 0 or an errno. */
int fs_handle_truncate(fs_handle *h, uint64_t size);

/* Sends a dirty buffer to the store and updates the node. Returns 0 or an errno; after an
 * error the buffer is dropped (the error was reported once, nothing is queued). A first value
 * refused (EILSEQ) for a key this open created with O_EXCL also removes that key, if it is
 * still the empty one created (prevIndex): a refused value leaves no file behind, as with a
 * create without O_EXCL, which stores nothing before its value (vim's binary swap file then
 * goes to its next directory and leaves no stale .swp in the mount). */
int fs_handle_push(fs *f, fs_handle *h);

/* Waits (the mount's lock released) until no push of H is on the network: a write, a
 * truncation or a release of H never runs beside its push. */
void fs_handle_wait(fs *f, fs_handle *h);

/* Close-to-open: sends the due values of NODE's handles (flushed, see above) before another
 * use of its key reads or replaces the stored value. "open(O_TRUNC); close(); open(); read()"
 * reads "", and a rename or a truncate(2) after such a close applies to the truncated value.
 * An error is logged (the close that made it due has returned). */
void fs_handle_push_closed(fs *f, fs_node *node);

/* Waits until no push of NODE's handles is on the network. */
void fs_handle_wait_node(fs *f, fs_node *node);

/* NODE's name was removed by this mount: every handle becomes an orphan (never pushed). A file
 * created and unlinked while open is not stored at its close, and an edit of an unlinked file
 * closes without ESTALE, as with an unlinked open file. */
void fs_handle_orphan(fs_node *node);

/* The size the kernel should see for NODE: a dirty handle's buffer, else the stored value. */
uint64_t fs_handle_size(const fs_node *node);

#endif
