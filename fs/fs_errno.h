/* fs_errno: v2 answers and transport failures as errno values (docs: fuse.md's table). */
#ifndef QUORUM_FS_ERRNO_H
#define QUORUM_FS_ERRNO_H

/* The errno of a v2 errorCode. */
int fs_errno_from_code(int code);

/* The errno of an error answer: its errorCode when the body has one, else by HTTP status. */
int fs_errno_from_answer(long status, const char *body);

#endif
