/* notify_systemd: systemd's readiness notification, for units of Type=notify such as Debian's
 * etcd.service (which quorumd can stand in for): when $NOTIFY_SOCKET names a socket, a datagram
 * with the state ("READY=1" once the member serves clients, where etcd sends it too). The
 * protocol is one sendto on an AF_UNIX datagram socket, a path or, after '@', a name in the
 * abstract namespace; libsystemd is not linked for it. */
#ifndef QUORUM_DAEMON_NOTIFY_SYSTEMD_H
#define QUORUM_DAEMON_NOTIFY_SYSTEMD_H

/* Sends STATE to $NOTIFY_SOCKET. Returns 0 when sent, 1 when the variable is unset or empty (not
 * started by systemd), or a negative errno (-EINVAL for an address that is neither). */
int notify_systemd(const char *state);

/* READY=1, with a line on stderr when it could not be sent. */
void notify_systemd_ready(void);

#endif
