"""etcd's two other basic endpoints: GET /debug/vars (Go's expvar page: command line,
descriptor limit, memory, Raft status) and PUT /config/local/log (the log level, capnslog's
names). The answers are compared with real etcd 3.4's; the level is checked by what a member
then writes to its log."""
import json
import re

import pytest

import cluster
from raft_cluster import make_cluster  # noqa: F401  (a fixture)

# (body, expected status, expected JSON body or None for none)
LOG_BODIES = [
    ('{"Level":"DEBUG"}', 204, None),
    ('{"level":"info"}', 204, None),            # keys match without case, as Go's decoder
    ('{"Level":"info"} and then anything', 204, None),  # only the first JSON value is read
    ('{"Level":"w"}', 204, None),               # capnslog's short names and digits
    ('{"Level":"2"}', 204, None),
    ('{"a":{"Level":1},"LEVEL":"trace"}', 204, None),
    ('{"Level":3}', 400, {"message": "Invalid json body"}),
    ('[]', 400, {"message": "Invalid json body"}),
    ('', 400, {"message": "Invalid json body"}),
    ('{"Level":"info"', 400, {"message": "Invalid json body"}),
    ('{}', 400, {"message": "Invalid log level "}),
    ('null', 400, {"message": "Invalid log level "}),
    ('{"Level":"loud"}', 400, {"message": "Invalid log level loud"}),
    ('{"Level":"INFO"}', 204, None),
]


def _answer(srv, method, path, body=None):
    st, h, data = srv.request(method, path, body=body)
    text = data.decode()
    return {"status": st, "content-type": h.get("content-type"), "allow": h.get("allow"),
            "body": json.loads(text) if text and h.get("content-type") == "application/json" else text}


def test_config_local_log_answers_as_etcd(make_server):
    etcd = make_server(kind="etcd")
    srv = make_server()
    for body, status, want in LOG_BODIES:
        a, b = _answer(etcd, "PUT", "/config/local/log", body), _answer(srv, "PUT", "/config/local/log", body)
        assert b == a, "PUT %r\n etcd:   %r\n server: %r" % (body, a, b)
        assert b["status"] == status and (b["body"] == want if want else b["body"] == ""), body
    for method in ("GET", "POST", "DELETE"):
        a, b = _answer(etcd, method, "/config/local/log"), _answer(srv, method, "/config/local/log")
        assert b == a == {"status": 405, "content-type": "text/plain; charset=utf-8", "allow": "PUT",
                          "body": "Method Not Allowed\n"}, method


def test_debug_vars_as_etcd(make_server):
    for srv in (make_server(kind="etcd"), make_server()):
        st, h, data = srv.request("GET", "/debug/vars")
        assert st == 200 and h["content-type"] == "application/json; charset=utf-8"
        v = json.loads(data)
        assert set(v) == {"cmdline", "file_descriptor_limit", "memstats", "raft.status"}
        assert v["cmdline"] == srv.argv()
        assert isinstance(v["file_descriptor_limit"], int) and v["file_descriptor_limit"] > 0
        assert v["memstats"]["Alloc"] > 0 and v["memstats"]["Sys"] >= v["memstats"]["Alloc"]
        rs = v["raft.status"]
        me = json.loads(srv.request("GET", "/v2/stats/self")[2])["id"]
        assert rs["id"] == me and rs["lead"] == me and rs["vote"] == me
        assert rs["raftState"] == "StateLeader" and rs["leadtransferee"] == "0"
        assert rs["term"] >= 1 and rs["applied"] >= 1 and rs["commit"] >= rs["applied"]
        assert list(rs["progress"]) == [me]
        assert rs["progress"][me]["match"] == rs["commit"]
        assert rs["progress"][me]["next"] == rs["commit"] + 1
        assert rs["progress"][me]["state"] == "StateReplicate"
        st, h, data = srv.request("POST", "/debug/vars")
        assert (st, h.get("allow"), data) == (405, "GET", b"Method Not Allowed\n")


@pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd's log lines")
def test_the_log_level_decides_what_members_write(make_cluster):
    c = make_cluster(3).start()
    leader = c.leader()
    quiet, chatty = c.followers(leader)
    st, _, _ = quiet.request("PUT", "/config/local/log", body='{"Level":"ERROR"}')
    assert st == 204
    st, _, _ = chatty.request("PUT", "/config/local/log", body='{"Level":"debug"}')
    assert st == 204
    # The leader goes: both others take part in the election that follows.
    leader.kill9()
    c.leader(timeout=15)

    def after_marker(m, level):
        log = m.log_text(limit=200000)
        marker = 'log level set to "%s"' % level
        assert marker in log
        return log[log.rindex(marker):]

    quiet_log, chatty_log = after_marker(quiet, "ERROR"), after_marker(chatty, "DEBUG")
    # Info lines (the election) only where the level lets them through, debug lines (the
    # dead leader's connections closing) only at DEBUG.
    assert "became" in chatty_log, chatty_log
    assert re.search(r"closing \S+ connection \(peer [0-9a-f]+\): closed by the other side",
                     chatty_log), chatty_log
    assert "quorumd: raft:" not in quiet_log and "quorumd: peers:" not in quiet_log, quiet_log


@pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd's log lines")
def test_the_log_level_flag_applies_from_the_start(make_server):
    loud, quiet = make_server(), make_server(extra_args=["--log-level", "error"])
    assert "became leader" in loud.log_text()
    assert "quorumd: raft:" not in quiet.log_text(), quiet.log_text()
    assert quiet.request("GET", "/v2/keys/")[0] == 200
