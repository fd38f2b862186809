"""The built-in web UI (/ui/), end to end: tests/e2e/ui.test.mjs drives Debian's Chromium
(headless, through playwright-core from npm, installed by `scripts/deps --test` into
tests/e2e/node_modules) against two real quorumd daemons started here: the page is served by
the first; the second is the other endpoint for `?endpoint=`. Screenshots of the main views go
to <build dir>/ui-screenshots (the folder of $QUORUMD)."""
import os
import subprocess

import pytest

import cluster

NODE = "/usr/bin/node"
CHROMIUM = "/usr/bin/chromium"
E2E = os.path.join(cluster.SOURCE_DIR, "tests", "e2e")
SCRIPT = os.path.join(E2E, "ui.test.mjs")


def _missing():
    need = {NODE: "node", CHROMIUM: "Debian's chromium",
            os.path.join(E2E, "node_modules", "playwright-core", "package.json"): "playwright-core"}
    return [what for p, what in need.items() if not os.path.exists(p)]


@pytest.mark.time_limit(240)
def test_ui_in_chromium(make_server):
    if cluster.is_etcd_target():
        pytest.skip("etcd does not serve the web UI")
    missing = _missing()
    assert not missing, "not installed: %s (scripts/deps --test installs them)" % ", ".join(missing)
    a = make_server(name="ui-a")
    b = make_server(name="ui-b")
    shots = os.path.join(os.path.dirname(os.path.abspath(cluster.quorumd_binary())), "ui-screenshots")
    env = dict(os.environ, QUORUM_UI_URL=a.url, QUORUM_UI_URL2=b.url, QUORUM_UI_SHOTS=shots)
    proc = subprocess.Popen([NODE, SCRIPT], cwd=E2E, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    cluster._live.add(proc)  # killed with its group (Chromium too) if the test is cut short
    try:
        out, _ = proc.communicate(timeout=220)
    finally:
        cluster._kill_group(proc, 9)
        proc.wait()
        cluster._live.discard(proc)
    text = out.decode("utf-8", "replace")
    print(text)
    with open(os.path.join(shots, "e2e.log"), "w") as f:  # kept beside the screenshots
        f.write(text)
    assert proc.returncode == 0, "browser tests failed:\n" + text
    assert " 0 failed" in text and "passed" in text
