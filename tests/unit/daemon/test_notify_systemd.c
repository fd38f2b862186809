/* Unit tests of daemon/notify_systemd.c: the datagram to $NOTIFY_SOCKET (a path, an abstract
 * name), nothing without the variable, -EINVAL for an address systemd never gives. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/notify_systemd.h"

/* A datagram socket bound to NAME (a path, or "@name" in the abstract namespace). */
static int bound(const char *name) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  size_t len = strlen(name);
  memcpy(a.sun_path, name, len);
  if (name[0] == '@') a.sun_path[0] = 0;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
  return fd;
}

static void expect_datagram(int fd, const char *want) {
  char buf[64];
  ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  assert_int_equal(n, (ssize_t)strlen(want));
  buf[n] = 0;
  assert_string_equal(buf, want);
}

static void test_path_and_abstract(void **state) {
  (void)state;
  char dir[] = "/tmp/qnotifyXXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[64];
  snprintf(path, sizeof path, "%s/s", dir);
  int fd = bound(path);
  setenv("NOTIFY_SOCKET", path, 1);
  assert_int_equal(notify_systemd("READY=1"), 0);
  expect_datagram(fd, "READY=1");
  close(fd);
  unlink(path);
  rmdir(dir);

  char name[64];
  snprintf(name, sizeof name, "@quorum-unit-%d", (int)getpid());
  fd = bound(name);
  setenv("NOTIFY_SOCKET", name, 1);
  assert_int_equal(notify_systemd("READY=1"), 0);
  expect_datagram(fd, "READY=1");
  close(fd);
  unsetenv("NOTIFY_SOCKET");
}

static void test_no_socket(void **state) {
  (void)state;
  unsetenv("NOTIFY_SOCKET");
  assert_int_equal(notify_systemd("READY=1"), 1);
  setenv("NOTIFY_SOCKET", "", 1);
  assert_int_equal(notify_systemd("READY=1"), 1);
  setenv("NOTIFY_SOCKET", "relative/path", 1);
  assert_int_equal(notify_systemd("READY=1"), -EINVAL);
  setenv("NOTIFY_SOCKET", "@", 1);
  assert_int_equal(notify_systemd("READY=1"), -EINVAL);
  setenv("NOTIFY_SOCKET", "/nonexistent-dir/socket", 1);
  assert_int_equal(notify_systemd("READY=1"), -ENOENT);
  unsetenv("NOTIFY_SOCKET");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_path_and_abstract),
      cmocka_unit_test(test_no_socket),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
