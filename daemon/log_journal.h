/* log_journal: --log-outputs=systemd/journal, as etcd takes it: quorumd's log lines go to
 * journald. The member's stderr becomes a stream to journald's stdout socket, the way systemd
 * connects a service's output to the journal (a short header naming the program, then one
 * entry per line), so every line it writes, from any thread, is an entry; libsystemd is not
 * linked for it. Without journald (no socket) the output is refused at start, as etcd refuses
 * it. */
#ifndef QUORUM_DAEMON_LOG_JOURNAL_H
#define QUORUM_DAEMON_LOG_JOURNAL_H

#include <stddef.h>

#define LOG_JOURNAL_STDOUT "/run/systemd/journal/stdout"

/* Connects to journald's stream socket at path (LOG_JOURNAL_STDOUT), sends the header for
 * `identifier` (priority info, no level prefixes, nothing forwarded) and returns the stream's
 * fd, or a negative errno with a message in err. */
int log_journal_stream(const char *path, const char *identifier, char *err, size_t errlen);

#endif
