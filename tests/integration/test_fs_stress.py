"""quorumfs under concurrent use: threads of one program and a second mount racing on a few
names.

Four threads on one mount and two on another open, write, append, truncate, read, rename,
unlink, mkdir and rmdir a handful of shared names at random for a few seconds (the sanitizer
build runs this too: the mount's requests run on several threads, and the close-to-open and
orphan handling coordinate handles across them). What each call may answer is what a local
filesystem could, plus ESTALE from a close whose file changed meanwhile (README, Writes);
never EIO, never a crash. Afterwards both mounts and the store hold the same tree.

QUORUM_STRESS_SECONDS lengthens the run; QUORUM_STRESS_SEED replays the choices (the timing
still differs).
"""
import errno
import os
import random
import threading
import time

import pytest

from test_fs import _need_fuse, mounts  # noqa: F401
from test_fs_differential import store_tree, tree, wait_equal

pytestmark = pytest.mark.time_limit(120)

NAMES = ["a", "b", "c", "d/x", "d/y", "e/f/g"]
ALLOWED = {errno.ENOENT, errno.EEXIST, errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY,
           errno.EXDEV, errno.ESTALE, errno.EBUSY}


def worker(root, rng, deadline, errors, counts):
    while time.monotonic() < deadline:
        name = rng.choice(NAMES)
        path = os.path.join(root, name)
        kind = rng.choice(["write", "write", "append", "trunc_close", "read", "rename",
                           "unlink", "mkdir", "rmdir", "truncate", "rename_open"])
        try:
            if kind == "write":
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.write(fd, ("%s %d\n" % (name, rng.randrange(1000))).encode())
                finally:
                    os.close(fd)
            elif kind == "append":
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, b"more\n")
                finally:
                    os.close(fd)
            elif kind == "trunc_close":  # stored at RELEASE, or by the next use of the name
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
            elif kind == "read":
                with open(path, "rb") as f:
                    f.read()
            elif kind == "rename":
                os.rename(path, os.path.join(root, rng.choice(NAMES)))
            elif kind == "unlink":
                os.unlink(path)
            elif kind == "mkdir":
                os.mkdir(os.path.dirname(path) or path)
            elif kind == "rmdir":
                os.rmdir(os.path.dirname(path) or path)
            elif kind == "truncate":
                os.truncate(path, rng.choice([0, 3]))
            elif kind == "rename_open":
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    os.write(fd, b"open ")
                    os.rename(path, os.path.join(root, rng.choice(NAMES)))
                    os.write(fd, b"renamed\n")
                finally:
                    os.close(fd)
            counts["ok"] += 1
        except OSError as e:
            if e.errno not in ALLOWED:
                errors.append("%s %s: %r" % (kind, name, e))
            counts["err"] += 1


def test_concurrent_calls_on_two_mounts(module_server, mounts):  # noqa: F811
    seconds = float(os.environ.get("QUORUM_STRESS_SECONDS", "6"))
    seed = int(os.environ.get("QUORUM_STRESS_SEED", str(random.randrange(1 << 30))))
    print("stress seed %d" % seed)
    prefix = "/stress%d" % seed
    st, _, _ = module_server.keys("PUT", prefix, form={"dir": "true"})
    assert st == 201
    a = mounts(module_server, prefix=prefix)
    b = mounts(module_server, prefix=prefix)
    deadline = time.monotonic() + seconds
    errors, counts = [], {"ok": 0, "err": 0}
    threads = [threading.Thread(target=worker, args=(m.dir, random.Random(seed + i), deadline,
                                                     errors, counts))
               for i, m in enumerate([a, a, a, a, b, b])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    assert not any(t.is_alive() for t in threads), "a call did not return"
    assert not errors, "unexpected errors (%d):\n%s\nmount logs:\n%s" % (
        len(errors), "\n".join(errors[:20]), "\n".join(m.log()[-3000:] for m in (a, b)))
    print("calls: %d answered, %d with an allowed error" % (counts["ok"], counts["err"]))
    assert counts["ok"] > 50, counts
    for m in (a, b):
        assert m.proc.poll() is None, "quorumfs died:\n" + m.log()[-5000:]
    time.sleep(0.5)  # (the last RELEASEs)
    want = store_tree(module_server, prefix)
    for m in (a, b):
        got = wait_equal(m.dir, want, 5.0)
        assert got == want, "mount %s differs from the store (log below)\n%s" % (
            m.dir, m.log()[-6000:])
