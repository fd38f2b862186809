"""python-etcd (Debian's python3-etcd, `import etcd`) against the server under test.

One server per module; every test works below its own top-level directory.
"""
import re
import threading
import time

import pytest

etcd = pytest.importorskip("etcd")


@pytest.fixture
def client(module_server):
    # allow_reconnect=False: no member sync at construction, no silent fail-over to another
    # machine; read_timeout bounds every request (watches pass their own timeout).
    c = etcd.Client(host="127.0.0.1", port=module_server.port, protocol="http",
                    allow_reconnect=False, read_timeout=15)
    yield c
    c.http.clear()


@pytest.fixture
def prefix(request, client):
    p = "/py-" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)
    yield p
    try:
        client.delete(p, recursive=True)
    except etcd.EtcdKeyNotFound:
        pass


def run_in_thread(fn):
    """Start fn() in a thread; returns a function that waits (bounded) for its result."""
    box = {}

    def body():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: B902 - re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()

    def wait(timeout=20):
        t.join(timeout)
        assert not t.is_alive(), "background call did not return within %s s" % timeout
        if "error" in box:
            raise box["error"]
        return box["result"]
    return wait


# ------------------------------------------------------------------------------ basic
def test_write_read_delete(client, prefix):
    k = prefix + "/k"
    r = client.write(k, "v1")
    assert r.action == "set" and r.key == k and r.value == "v1" and r.newKey
    assert r.createdIndex == r.modifiedIndex and r.etcd_index == r.modifiedIndex
    assert client.read(k).value == "v1"
    assert client.get(k).value == "v1"
    assert k in client

    r2 = client.set(k, "v2")
    assert r2.action == "set" and not r2.newKey and r2.modifiedIndex > r.modifiedIndex
    assert r2._prev_node.value == "v1"
    assert client.read(k).value == "v2"

    d = client.delete(k)
    assert d.action == "delete" and d.key == k and d.modifiedIndex > r2.modifiedIndex
    assert d._prev_node.value == "v2"
    assert k not in client
    with pytest.raises(etcd.EtcdKeyNotFound) as ei:
        client.read(k)
    assert ei.value.payload["errorCode"] == 100 and ei.value.payload["cause"] == k
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.delete(k)

    # pop returns the deleted node; unicode in keys and values survives the round trip
    client.write(prefix + "/ünï cödé", "välüe ✓")
    assert client.read(prefix + "/ünï cödé").value == "välüe ✓"
    assert client.pop(prefix + "/ünï cödé").value == "välüe ✓"


def test_key_not_found_names_first_missing_component(client, prefix):
    with pytest.raises(etcd.EtcdKeyNotFound) as ei:
        client.read(prefix + "/no/such/key")
    p = ei.value.payload
    assert p["status"] == 404 and p["errorCode"] == 100 and p["message"] == "Key not found"
    assert p["cause"] == prefix
    assert isinstance(p["index"], int) and p["index"] > 0


def test_errors_map_to_exceptions(client, prefix):
    client.write(prefix + "/file", "x")
    client.write(prefix + "/dir/child", "y")
    with pytest.raises(etcd.EtcdNotFile):
        client.write(prefix + "/dir", "value onto a dir")
    with pytest.raises(etcd.EtcdNotDir):
        client.write(prefix + "/file/below", "z")
    with pytest.raises(etcd.EtcdAlreadyExist):
        client.write(prefix + "/file", "again", prevExist=False)
    with pytest.raises(etcd.EtcdDirNotEmpty):
        client.delete(prefix + "/dir", dir=True)
    with pytest.raises(etcd.EtcdRootReadOnly):
        client.delete("/", recursive=True)
    with pytest.raises(etcd.EtcdValueError) as ei:
        client.write(prefix + "/file", "v", ttl="abc")
    assert ei.value.payload["errorCode"] == 202
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.write(prefix + "/missing", "v", prevExist=True)
    # nothing of the above changed anything
    assert client.read(prefix + "/file").value == "x"
    assert client.read(prefix + "/dir/child").value == "y"


# ------------------------------------------------------------------------------ directories
def test_directory_listing_recursive_and_sorted(client, prefix):
    keys = {prefix + "/a": "1", prefix + "/b/c": "2", prefix + "/b/d/e": "3", prefix + "/f": "4"}
    for k, v in keys.items():
        client.write(k, v)
    client.write(prefix + "/empty", None, dir=True)
    client.write(prefix + "/_hidden", "h")

    top = client.read(prefix)
    assert top.dir and top.key == prefix
    names = sorted(n["key"] for n in top._children)
    assert names == sorted([prefix + "/a", prefix + "/b", prefix + "/empty", prefix + "/f"])
    b = [n for n in top._children if n["key"] == prefix + "/b"][0]
    assert b.get("dir") is True and "nodes" not in b    # not recursive: no grandchildren

    rec = client.read(prefix, recursive=True)
    leaves = {n.key: n.value for n in rec.leaves if not n.dir}
    assert leaves == keys
    all_keys = [n.key for n in rec.get_subtree()]
    assert prefix + "/b/d" in all_keys and prefix + "/empty" in all_keys
    assert prefix + "/_hidden" not in all_keys

    srt = client.read(prefix, recursive=True, sorted=True)
    flat = [n.key for n in srt.get_subtree()]
    assert flat == [prefix, prefix + "/a", prefix + "/b", prefix + "/b/c", prefix + "/b/d",
                    prefix + "/b/d/e", prefix + "/empty", prefix + "/f"]

    # directory delete: plain delete refused, dir=True only when empty, recursive always
    with pytest.raises(etcd.EtcdNotFile):
        client.delete(prefix + "/b")
    r = client.delete(prefix + "/empty", dir=True)
    assert r.action == "delete" and r.dir
    r = client.delete(prefix + "/b", recursive=True)
    assert r.action == "delete" and r.dir
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.read(prefix + "/b/d/e")


# ------------------------------------------------------------------------------ TTL
@pytest.mark.time_limit(60)
def test_ttl_expiry_and_refresh(client, prefix):
    k = prefix + "/ttl"
    r = client.write(k, "short", ttl=2)
    assert r.ttl in (1, 2) and r.expiration
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", r.expiration)
    assert client.read(k).ttl in (1, 2)

    # refresh keeps the value and the key, moves the expiration
    keep = prefix + "/keep"
    client.write(keep, "kept", ttl=100)
    rr = client.refresh(keep, ttl=200)
    assert rr.value == "kept" and rr.ttl in (199, 200)
    got = client.read(keep)
    assert got.value == "kept" and 190 <= got.ttl <= 200

    # writing without ttl makes it permanent again
    client.write(keep, "perm", prevExist=True)
    assert client.read(keep).ttl is None

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.read(k)
        except etcd.EtcdKeyNotFound:
            break
        time.sleep(0.2)
    else:
        pytest.fail("key with ttl=2 still present after 10 s")

    # a directory with a TTL takes its subtree with it
    client.write(prefix + "/tdir", None, dir=True, ttl=1)
    client.write(prefix + "/tdir/child", "c")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.read(prefix + "/tdir/child")
        except etcd.EtcdKeyNotFound:
            break
        time.sleep(0.2)
    else:
        pytest.fail("child of a ttl=1 directory still present after 10 s")


# ------------------------------------------------------------------------------ CAS
def test_test_and_set(client, prefix):
    k = prefix + "/cas"
    first = client.write(k, "one")
    r = client.test_and_set(k, "two", "one")
    assert r.action == "compareAndSwap" and r.value == "two"
    assert r.createdIndex == first.createdIndex and r.modifiedIndex > first.modifiedIndex

    with pytest.raises(etcd.EtcdCompareFailed) as ei:
        client.test_and_set(k, "three", "one")
    p = ei.value.payload
    assert p["status"] == 412 and p["errorCode"] == 101 and p["message"] == "Compare failed"
    assert p["cause"] == "[one != two]" and p["index"] == r.modifiedIndex
    assert client.read(k).value == "two"

    # prevIndex
    with pytest.raises(etcd.EtcdCompareFailed) as ei:
        client.write(k, "x", prevIndex=first.modifiedIndex)
    assert ei.value.payload["cause"] == "[%d != %d]" % (first.modifiedIndex, r.modifiedIndex)
    r3 = client.write(k, "three", prevIndex=r.modifiedIndex)
    assert r3.value == "three" and r3.action == "compareAndSwap"

    # update(obj) = compare-and-swap on modifiedIndex
    obj = client.read(k)
    obj.value = "four"
    r4 = client.update(obj)
    assert r4.value == "four"
    obj.value = "stale"
    with pytest.raises(etcd.EtcdCompareFailed):
        client.update(obj)

    # prevExist
    with pytest.raises(etcd.EtcdAlreadyExist):
        client.write(k, "new", prevExist=False)
    c = client.write(prefix + "/fresh", "new", prevExist=False)
    assert c.action == "create" and c.newKey
    u = client.write(prefix + "/fresh", "upd", prevExist=True)
    assert u.action == "update" and u._prev_node.value == "new"

    # compare-and-delete
    with pytest.raises(etcd.EtcdCompareFailed):
        client.delete(k, prevValue="nope")
    d = client.delete(k, prevValue="four")
    assert d.action == "compareAndDelete"
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.read(k)

    # test_and_set on a missing key
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.test_and_set(prefix + "/never", "a", "b")


# ------------------------------------------------------------------------------ in-order
def test_append_in_order(client, prefix):
    q = prefix + "/queue"
    made = []
    for i in range(12):
        r = client.write(q, "job%d" % i, append=True)
        assert r.action == "create" and r.newKey
        assert r.key == "%s/%020d" % (q, r.createdIndex)
        made.append(r)
    assert [r.createdIndex for r in made] == sorted(r.createdIndex for r in made)
    # consecutive appends with nothing in between take consecutive indexes
    assert made[-1].createdIndex - made[0].createdIndex == len(made) - 1

    listing = client.read(q, sorted=True)
    got = [(n["key"], n["value"]) for n in listing._children]
    assert got == [(r.key, "job%d" % i) for i, r in enumerate(made)]

    rec = client.read(q, recursive=True, sorted=True)
    assert [n.value for n in rec.leaves] == ["job%d" % i for i in range(12)]

    # append below a file is refused
    client.write(prefix + "/plain", "x")
    with pytest.raises(etcd.EtcdNotDir):
        client.write(prefix + "/plain", "y", append=True)


# ------------------------------------------------------------------------------ watches
@pytest.mark.time_limit(60)
def test_watch_in_thread_sees_later_write(client, module_server, prefix):
    k = prefix + "/w"
    client.write(k, "before")
    # A separate client for the watcher: python-etcd clients share a pool per client.
    wc = etcd.Client(host="127.0.0.1", port=module_server.port, protocol="http",
                     allow_reconnect=False, read_timeout=15)
    before = module_server.watchers()
    wait = run_in_thread(lambda: wc.watch(k, timeout=15))
    module_server.wait_watchers(before + 1)
    w = client.write(k, "after")
    ev = wait()
    assert ev.action == "set" and ev.key == k and ev.value == "after"
    assert ev.modifiedIndex == w.modifiedIndex and ev._prev_node.value == "before"

    # recursive watch sees a child, including one created below a new subdirectory
    wait = run_in_thread(lambda: wc.watch(prefix, recursive=True, timeout=15))
    module_server.wait_watchers(before + 1)
    w2 = client.write(prefix + "/sub/deep", "d")
    ev = wait()
    assert ev.key == prefix + "/sub/deep" and ev.value == "d" and ev.modifiedIndex == w2.modifiedIndex

    # a watch on a key is woken by the delete of its parent directory (the event is the dir's)
    wait = run_in_thread(lambda: wc.watch(prefix + "/sub/deep", timeout=15))
    module_server.wait_watchers(before + 1)
    d = client.delete(prefix + "/sub", recursive=True)
    ev = wait()
    assert ev.action == "delete" and ev.key == prefix + "/sub" and ev.modifiedIndex == d.modifiedIndex

    # watch timing out on the client side raises EtcdWatchTimedOut; the server forgets it
    with pytest.raises(etcd.EtcdWatchTimedOut):
        wc.watch(prefix + "/never", timeout=0.5)
    wc.http.clear()
    deadline = time.monotonic() + 10
    while module_server.watchers() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert module_server.watchers() == before, "watchers of closed connections are still counted"


def test_watch_from_history_with_wait_index(client, prefix):
    k = prefix + "/h"
    r1 = client.write(k, "1")
    r2 = client.write(k, "2")
    client.write(prefix + "/other", "x")
    r3 = client.write(k, "3")
    ev = client.read(k, wait=True, waitIndex=r1.modifiedIndex, timeout=5)
    assert ev.value == "1" and ev.modifiedIndex == r1.modifiedIndex
    ev = client.read(k, wait=True, waitIndex=r1.modifiedIndex + 1, timeout=5)
    assert ev.value == "2" and ev.modifiedIndex == r2.modifiedIndex
    ev = client.watch(k, index=r2.modifiedIndex + 1, timeout=5)    # skips /other
    assert ev.value == "3" and ev.modifiedIndex == r3.modifiedIndex
    ev = client.read(prefix, wait=True, recursive=True, waitIndex=r2.modifiedIndex + 1, timeout=5)
    assert ev.key == prefix + "/other"

    # eternal_watch from history yields the events in order
    gen = client.eternal_watch(k, index=r1.modifiedIndex)
    assert [next(gen).value for _ in range(3)] == ["1", "2", "3"]


@pytest.mark.time_limit(60)
def test_wait_index_in_the_future_waits(client, module_server, prefix):
    k = prefix + "/fut"
    cur = client.write(k, "now")
    wc = etcd.Client(host="127.0.0.1", port=module_server.port, protocol="http",
                     allow_reconnect=False, read_timeout=15)
    # the first matching event with index >= cur+3: two other writes come first
    before = module_server.watchers()
    wait = run_in_thread(lambda: wc.read(k, wait=True, waitIndex=cur.modifiedIndex + 3, timeout=15))
    module_server.wait_watchers(before + 1)
    client.write(k, "a")                      # cur+1: too early
    client.write(prefix + "/x", "b")          # cur+2: another key
    time.sleep(0.5)
    last = client.write(k, "c")               # cur+3
    ev = wait()
    assert ev.value == "c" and ev.modifiedIndex == last.modifiedIndex == cur.modifiedIndex + 3
    wc.http.clear()


# ------------------------------------------------------------------------------ cluster
def test_cluster_information(client, module_server):
    assert client.machines == [module_server.url]

    members = client.members
    assert len(members) == 1
    (mid, m), = members.items()
    assert re.fullmatch(r"[1-9a-f][0-9a-f]{0,15}", mid) and m["id"] == mid   # (no zero padding, as etcd)
    assert m["name"] == "t"
    assert m["clientURLs"] == [module_server.url]
    assert m["peerURLs"] == [module_server.peer_url]

    assert client.leader == m

    st = client.stats
    assert st["name"] == "t" and st["id"] == mid and st["state"] == "StateLeader"
    assert st["leaderInfo"]["leader"] == mid

    ls = client.leader_stats
    assert ls["leader"] == mid and ls["followers"] == {}

    before = client.store_stats
    for f in ("getsSuccess", "getsFail", "setsSuccess", "setsFail", "deleteSuccess", "deleteFail",
              "updateSuccess", "updateFail", "createSuccess", "createFail",
              "compareAndSwapSuccess", "compareAndSwapFail", "compareAndDeleteSuccess",
              "compareAndDeleteFail", "expireCount", "watchers"):
        assert isinstance(before[f], int), f
    client.write("/py-stats-probe", "x")
    client.delete("/py-stats-probe")
    after = client.store_stats
    assert after["setsSuccess"] == before["setsSuccess"] + 1
    assert after["deleteSuccess"] == before["deleteSuccess"] + 1

    assert re.fullmatch(r"\d+\.\d+\.\d+", client.version)
    assert re.fullmatch(r"\d+\.\d+\.\d+", client.cluster_version)


def test_results_carry_store_and_raft_index(client, prefix):
    r = client.write(prefix + "/i", "x")
    g = client.read(prefix + "/i")
    assert g.etcd_index >= r.modifiedIndex
    assert isinstance(g.raft_index, int) and g.raft_index > 0


def test_lock_is_exclusive_and_handed_over(module_server, prefix):
    """python-etcd's etcd.Lock (in-order keys under /_locks, a watch on the one before):
    a second holder waits until the first releases, then gets it."""
    c1 = etcd.Client(host="127.0.0.1", port=module_server.port, allow_reconnect=False, read_timeout=15)
    c2 = etcd.Client(host="127.0.0.1", port=module_server.port, allow_reconnect=False, read_timeout=15)
    name = prefix.strip("/").replace("/", "_")
    l1, l2 = etcd.Lock(c1, name), etcd.Lock(c2, name)
    assert l1.acquire(lock_ttl=30) and l1.is_acquired
    got = []
    done = run_in_thread(lambda: got.append(l2.acquire(blocking=True, lock_ttl=30)))
    time.sleep(0.5)
    assert not got and not l2.is_acquired  # still waiting for l1
    l1.release()
    done()
    assert got == [True] and l2.is_acquired and not l1.is_acquired
    l2.release()
    with etcd.Lock(c1, name) as l3:
        assert l3.is_acquired
    assert c1.read("/_locks/" + name, recursive=True).dir
