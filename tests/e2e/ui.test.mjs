// Browser tests of quorumd's web UI: Debian's Chromium, headless, driven by playwright-core,
// against real quorumd daemons started by tests/integration/test_ui.py.
//
// Environment: QUORUM_UI_URL (the daemon serving the page), QUORUM_UI_URL2 (a second daemon,
// for ?endpoint=), QUORUM_UI_URL3 (a daemon with /v2/auth on, for the sign-in), QUORUM_UI_CLUSTER (client URLs of the members of a 3-member Raft cluster,
// comma-separated), QUORUM_UI_SHOTS (screenshot folder), QUORUM_UI_ONLY (regexp of test names).
// Every test acts as a person would (clicks, typing, keys) and checks the page and the API.
// Prints "N passed, N failed" and exits non-zero when any test failed.
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";

const BASE = process.env.QUORUM_UI_URL;
const BASE2 = process.env.QUORUM_UI_URL2;
const BASE3 = process.env.QUORUM_UI_URL3; // /v2/auth on: root:rootpw, ed:edpw (writes /ed/*)
const CLUSTER = (process.env.QUORUM_UI_CLUSTER || "").split(",").filter(Boolean);
const DAEMONS = [BASE, BASE2, BASE3, ...CLUSTER].filter(Boolean); // the only origins a page may ask
const SHOTS = process.env.QUORUM_UI_SHOTS || "ui-screenshots";
const ONLY = process.env.QUORUM_UI_ONLY ? new RegExp(process.env.QUORUM_UI_ONLY) : null;
const CHROMIUM = process.env.QUORUM_UI_CHROMIUM || "/usr/bin/chromium";
if (!BASE) throw new Error("QUORUM_UI_URL is not set");
fs.mkdirSync(SHOTS, { recursive: true });

/* ------------------------------------------------------------------ API helpers */
function keyPath(key) { return "/v2/keys" + key.split("/").map(encodeURIComponent).join("/"); }
async function api(method, key, query, form, base = BASE) {
  let u = base + keyPath(key);
  if (query) u += "?" + new URLSearchParams(query);
  const opt = { method };
  if (form) {
    opt.body = new URLSearchParams(form).toString();
    opt.headers = { "Content-Type": "application/x-www-form-urlencoded" };
  }
  const r = await fetch(u, opt);
  const body = await r.json();
  return { status: r.status, body, index: Number(r.headers.get("x-etcd-index")) };
}
const put = (key, value, extra = {}, base = BASE) => api("PUT", key, null, { value, ...extra }, base);
async function get(key, query, base = BASE) { return api("GET", key, query, null, base); }
async function mustGet(key, query) {
  const r = await get(key, query);
  assert.equal(r.status, 200, `GET ${key}: ${JSON.stringify(r.body)}`);
  return r.body.node;
}
function curl(...args) {
  return execFileSync("curl", ["-sS", "--max-time", "5", ...args], { encoding: "utf8" });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function eventually(fn, what, timeout = 5000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { return await fn(); } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`${what}: not within ${timeout} ms: ${last && last.message}`);
    await sleep(50);
  }
}

/* ------------------------------------------------------------------ page helpers */
let browser;
let shared = null; // one context and page reused by the tests (a new context costs ~1.5 s)
const pageErrors = [];
async function newPage(opts) {
  const ctx = await browser.newContext({ acceptDownloads: true, deviceScaleFactor: 1, ...opts });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // The UI works with no network beyond the daemons: any other request fails the test.
  page.on("request", (r) => {
    const u = r.url();
    if (!DAEMONS.some((d) => u.startsWith(d + "/")) && !/^(about|blob|data):/.test(u))
      pageErrors.push("request outside the daemons: " + u);
  });
  // HTTP errors of the v2 API (404, 412...) are answers the page handles; the browser logs
  // each one as "Failed to load resource", which is not a fault of the page.
  page.on("console", (m) => {
    if (m.type() === "error" && !/^Failed to load resource: the server responded with a status of/.test(m.text()))
      pageErrors.push("console: " + m.text());
  });
  return page;
}
async function openUI(hashPath = "/", { query = "", viewport, base = BASE, mobile = false } = {}) {
  let page;
  if (viewport || mobile) {
    page = await newPage({ viewport, isMobile: mobile, hasTouch: mobile });
  } else {
    if (!shared) shared = await newPage({ viewport: { width: 1280, height: 800 } });
    page = shared;
    await page.goto("about:blank"); // a fresh document even when only the hash differs
  }
  const hash = "#" + hashPath.split("/").map(encodeURIComponent).join("/");
  await page.goto(`${base}/ui/${query}${hash}`);
  await page.waitForSelector("#live.on", { timeout: 10000 });
  return page;
}
async function closePage(page) {
  if (page === shared) await page.goto("about:blank"); // stops the page's watch stream
  else await page.context().close();
}
const row = (page, key) => page.locator(`.row[data-key="${key}"]`);
const treeItem = (page, key) => page.locator(`[role=treeitem][data-key="${key}"]`);
async function rowNames(page) {
  return page.$$eval("#rows .row", (rs) => rs.sort((a, b) => a.getAttribute("aria-rowindex") - b.getAttribute("aria-rowindex"))
    .map((r) => r.dataset.key));
}
/* Opens a directory by clicking its row until the crumbs name it: a live change that re-renders
 * the table (the deletion just before, under load) can take the first click's row away. */
async function openRow(page, key, crumb) {
  const there = async () => (await page.locator("#crumbs").textContent()).includes(crumb);
  await eventually(async () => {
    if (!(await there())) await row(page, key).click({ timeout: 1000 });
    await waitText(page.locator("#crumbs"), crumb, 1000);
  }, `opening ${key}`, 6000);
}
async function shot(page, name) { await page.screenshot({ path: path.join(SHOTS, name + ".png") }); }
async function waitText(locator, re, timeout = 3000) {
  await eventually(async () => {
    const t = await locator.textContent();
    if (!(re instanceof RegExp ? re.test(t) : t.includes(re))) throw new Error(`text is ${JSON.stringify(t)}`);
  }, `waiting for ${re}`, timeout);
}

/* ------------------------------------------------------------------ tests */
const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("serving: /ui redirects, assets have types, unknown is 404", async () => {
  let r = await fetch(BASE + "/ui?endpoint=x", { redirect: "manual" });
  assert.equal(r.status, 301);
  assert.equal(r.headers.get("location"), "/ui/?endpoint=x");
  r = await fetch(BASE + "/ui/");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^text\/html/);
  assert.equal(r.headers.get("cache-control"), "no-cache");
  const html = await r.text();
  const js = html.match(/src="(app\.js\?v=[0-9a-f]+)"/);
  assert.ok(js, "index.html names app.js with its version");
  r = await fetch(BASE + "/ui/" + js[1]);
  assert.match(r.headers.get("content-type"), /^text\/javascript/);
  assert.match(r.headers.get("cache-control"), /immutable/);
  assert.ok((await r.text()).includes("quorumUI"));
  r = await fetch(BASE + "/ui/app.css");
  assert.match(r.headers.get("content-type"), /^text\/css/);
  assert.equal(r.headers.get("cache-control"), "no-cache");
  assert.equal((await fetch(BASE + "/ui/nope.js")).status, 404);
  assert.equal((await fetch(BASE + "/ui/", { method: "DELETE" })).status, 405);
});

test("tree loads lazily and the table is sorted", async () => {
  await put("/t1/b", "2"); await put("/t1/a", "1"); await put("/t1/c/d", "x"); await put("/t1/c/e/f", "y");
  await put("/t1/B", "capital");
  const page = await openUI("/");
  await treeItem(page, "/t1").waitFor();
  assert.equal(await treeItem(page, "/t1/c").count(), 0, "subdirectory not loaded before expanding");
  await treeItem(page, "/t1").locator(".tw").first().click(); // expand
  await treeItem(page, "/t1/c").waitFor();
  assert.equal(await treeItem(page, "/t1/c/e").count(), 0, "grandchild not loaded yet");
  await treeItem(page, "/t1").locator(".tn").first().click(); // open
  await row(page, "/t1/a").waitFor();
  assert.deepEqual(await rowNames(page), ["/t1/c", "/t1/B", "/t1/a", "/t1/b"]);
  const api = (await mustGet("/t1", { sorted: "true" })).nodes.map((n) => n.key);
  assert.deepEqual(api.filter((k) => k !== "/t1/c"), ["/t1/B", "/t1/a", "/t1/b"]);
  assert.equal(await row(page, "/t1/a").locator(".c-value").textContent(), "1");
  await shot(page, "main");
  await page.click('#crumbs a[href="#/"]'); // breadcrumbs lead back up
  await row(page, "/t1").waitFor();
  assert.equal(await page.evaluate(() => location.hash), "#/");
  await closePage(page);
});

test("view a JSON value pretty and raw, then edit it", async () => {
  await put("/t2/json", '{"a":1,"b":[true,"x"]}');
  const page = await openUI("/t2/json");
  await page.locator("#value.json").waitFor();
  await waitText(page.locator("#value"), '"a": 1');
  await waitText(page.locator("#value"), /"b": \[\n\s+true/);
  await shot(page, "json-value");
  await page.click("#view-raw");
  assert.equal(await page.locator("#value").textContent(), '{"a":1,"b":[true,"x"]}');
  await page.click("#edit");
  await page.locator("#edit-value").fill('{"a":2}');
  await page.click("#save");
  await eventually(async () => assert.equal((await mustGet("/t2/json")).value, '{"a":2}'), "API has the edit");
  await page.click("#view-pretty");
  await waitText(page.locator("#value"), '"a": 2');
  await closePage(page);
});

test("create a directory and a key with a TTL; indexes shown", async () => {
  const page = await openUI("/");
  await page.click("#new-dir");
  await page.fill("#create-name", "t3");
  await page.click("#create-ok");
  await eventually(async () => assert.equal((await mustGet("/t3")).dir, true), "dir created");
  await waitText(page.locator("#crumbs"), "t3");
  await page.click("#new-key");
  await page.fill("#create-name", "k");
  await page.fill("#create-value", "hello");
  await page.fill("#create-ttl", "100");
  await page.click("#create-ok");
  const n = await eventually(async () => mustGet("/t3/k"), "key created");
  assert.equal(n.value, "hello");
  assert.ok(n.ttl > 90 && n.ttl <= 100, "ttl " + n.ttl);
  await row(page, "/t3/k").waitFor();
  await waitText(page.locator("#d-created"), String(n.createdIndex));
  assert.equal(await page.locator("#d-modified").textContent(), String(n.modifiedIndex));
  await waitText(page.locator("#d-ttl"), /^1m[34]\ds$/);
  // an existing name is refused, not overwritten
  await page.click("#new-key");
  await page.fill("#create-name", "/t3/k");
  await page.fill("#create-value", "other");
  await page.click("#create-ok");
  await waitText(page.locator("#create-error"), "already exists");
  await page.keyboard.press("Escape");
  assert.equal((await mustGet("/t3/k")).value, "hello");
  await closePage(page);
});

test("TTL counts down, survives a plain edit, is changed by refresh and cleared", async () => {
  await put("/t4/k", "v1", { ttl: "30" });
  const page = await openUI("/t4/k");
  const first = await page.locator("#d-ttl").textContent();
  const apiTTL = (await mustGet("/t4/k")).ttl;
  assert.match(first, /^\d+s$/);
  assert.ok(Math.abs(parseInt(first, 10) - apiTTL) <= 2, `shown ${first}, API ${apiTTL}`);
  await eventually(async () => {
    const t = parseInt(await page.locator("#d-ttl").textContent(), 10);
    assert.ok(t < parseInt(first, 10), "counting down: " + t);
  }, "TTL counts down", 3000);
  // plain edit keeps the TTL
  await page.click("#edit");
  await page.locator("#edit-value").fill("v2");
  await page.click("#save");
  let n = await eventually(async () => { const x = await mustGet("/t4/k"); assert.equal(x.value, "v2"); return x; }, "edit");
  assert.ok(n.ttl > 20 && n.ttl <= 30, "TTL kept on edit: " + n.ttl);
  // change it (refresh); a live change of the key while the new TTL is typed keeps what was typed
  await waitText(page.locator("#d-modified"), new RegExp(`^${n.modifiedIndex}$`)); // the edit shown
  await page.fill("#ttl-input", "500");
  const changed = await put("/t4/k", "v3", { ttl: "25", prevExist: "true" });
  await waitText(page.locator("#d-modified"), new RegExp(`^${changed.body.node.modifiedIndex}$`));
  assert.equal(await page.locator("#ttl-input").inputValue(), "500");
  await page.click("#ttl-set");
  n = await eventually(async () => { const x = await mustGet("/t4/k"); assert.ok(x.ttl > 400); return x; }, "TTL set");
  assert.equal(n.value, "v3");
  await eventually(async () => assert.equal(await page.locator("#ttl-input").inputValue(), ""), "TTL input emptied");
  await waitText(page.locator("#d-ttl"), /^8m/);
  // clear it
  await page.click("#ttl-clear");
  n = await eventually(async () => { const x = await mustGet("/t4/k"); assert.equal(x.ttl, undefined); return x; }, "TTL cleared");
  assert.equal(n.value, "v3");
  await waitText(page.locator("#d-ttl"), "none");
  await closePage(page);
});

test("sign in: a server with /v2/auth on asks who you are, and the user's rights apply", async () => {
  assert.ok(BASE3, "QUORUM_UI_URL3 is set");
  const ROOT = "Basic " + Buffer.from("root:rootpw").toString("base64");
  const page = await newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${BASE3}/ui/#/ed`);
  await page.locator("#dlg-login[open]").waitFor();
  await waitText(page.locator("#login-error"), "asks who you are");
  await page.fill("#login-user", "ed");
  await page.fill("#login-password", "wrong");
  await page.click("#login-ok");
  await page.locator("#dlg-login[open]").waitFor(); // (the page started again, and was refused)
  await waitText(page.locator("#login-error"), "Access refused for ed");
  await page.fill("#login-password", "edpw");
  await page.click("#login-ok");
  await page.waitForSelector("#live.on", { timeout: 10000 });
  await waitText(page.locator("#login-open"), "ed");
  await row(page, "/ed/k").waitFor();
  // The watch is the user's too: a change made elsewhere shows.
  curl("-XPUT", "-H", "Authorization: " + ROOT, BASE3 + keyPath("/ed/live"), "-d", "value=from-curl");
  await row(page, "/ed/live").waitFor();
  // A key where ed may write is created; where ed may not, the page says so.
  await page.click("#new-key");
  await page.fill("#create-name", "made");
  await page.fill("#create-value", "by ed");
  await page.click("#create-ok");
  await eventually(async () => {
    const r = JSON.parse(curl("-H", "Authorization: " + ROOT, BASE3 + keyPath("/ed/made")));
    assert.equal(r.node.value, "by ed");
  }, "ed's key written");
  await page.click("#new-key");
  await page.fill("#create-name", "/elsewhere");
  await page.fill("#create-value", "no");
  await page.click("#create-ok");
  await page.locator("#dlg-login[open]").waitFor();
  await waitText(page.locator("#login-error"), "Access refused for ed");
  const r = JSON.parse(curl("-H", "Authorization: " + ROOT, BASE3 + keyPath("/elsewhere")));
  assert.equal(r.errorCode, 100, "nothing written outside /ed");
  // Sign out: a guest, who may not read, is asked again.
  await page.click("#login-out");
  await page.locator("#dlg-login[open]").waitFor();
  await waitText(page.locator("#login-error"), "asks who you are");
  await page.context().close();
});

test("a user who may read one subtree only: the page opens there, live, with / above it", async () => {
  assert.ok(BASE3, "QUORUM_UI_URL3 is set");
  const ROOT = "Basic " + Buffer.from("root:rootpw").toString("base64");
  async function signIn(page, hash, user = "amy") {
    await page.goto(`${BASE3}/ui/${hash}`);
    await page.locator("#dlg-login[open]").waitFor();
    await page.fill("#login-user", user);
    await page.fill("#login-password", user + "pw");
    await page.click("#login-ok");
  }
  // Opened at /: nothing amy may read on the way, and the page says where to open it.
  let page = await newPage({ viewport: { width: 1280, height: 800 } });
  await signIn(page, "#/");
  await page.locator("#dlg-login[open]").waitFor();
  await waitText(page.locator("#login-error"), "Access refused for amy. Open the page at a directory amy may read");
  await page.context().close();
  // Opened at /amy/sub: /amy is the highest directory amy may read; it is loaded and watched.
  page = await newPage({ viewport: { width: 1280, height: 800 } });
  await signIn(page, "#/amy/sub");
  await page.waitForSelector("#live.on", { timeout: 10000 });
  await waitText(page.locator("#login-open"), "amy");
  await row(page, "/amy/sub/b").waitFor();
  await treeItem(page, "/amy/sub").waitFor();
  curl("-XPUT", "-H", "Authorization: " + ROOT, BASE3 + keyPath("/amy/sub/live"), "-d", "value=from-curl");
  await row(page, "/amy/sub/live").waitFor();
  // Up at /: the table lists /amy alone, and nothing is refused (/ is not read).
  await treeItem(page, "/").locator(".tn").first().click();
  await waitText(page.locator("#crumbs"), "/");
  await eventually(async () => assert.deepEqual(await rowNames(page), ["/amy"]), "/ lists /amy");
  assert.equal(await page.locator("#dlg-login[open]").count(), 0);
  await openRow(page, "/amy", "amy");
  await eventually(async () => assert.deepEqual(await rowNames(page), ["/amy/sub"]), "/amy lists sub");
  assert.equal(await page.locator("#dlg-login[open]").count(), 0);
  await page.context().close();
  // ann may read /ann and /ann/* but, as in etcd, not watch /ann recursively: the page opens
  // there and reloads what it shows instead of watching.
  page = await newPage({ viewport: { width: 1280, height: 800 } });
  await signIn(page, "#/ann", "ann");
  await page.waitForSelector("#live.poll", { timeout: 10000 });
  await row(page, "/ann/c").waitFor();
  curl("-XPUT", "-H", "Authorization: " + ROOT, BASE3 + keyPath("/ann/polled"), "-d", "value=x");
  await row(page, "/ann/polled").waitFor({ timeout: 8000 });
  assert.equal(await page.locator("#dlg-login[open]").count(), 0);
  await page.context().close();
});

test("delete a key; delete a directory only after confirming", async () => {
  await put("/t5/k", "x"); await put("/t5/d/a", "1"); await put("/t5/d/b", "2");
  const page = await openUI("/t5/k");
  await page.click("#delete-key");
  await eventually(async () => assert.equal((await get("/t5/k")).status, 404), "key deleted");
  await eventually(async () => assert.equal(await row(page, "/t5/k").count(), 0), "row gone");
  await openRow(page, "/t5/d", "d");
  await page.click("#delete-dir");
  await page.locator("#dlg-confirm[open]").waitFor();
  await waitText(page.locator("#confirm-text"), "/t5/d");
  await page.keyboard.press("Enter"); // the focused default is Cancel
  assert.equal((await get("/t5/d")).status, 200, "cancel keeps the directory");
  await page.click("#delete-dir");
  await page.click("#confirm-ok");
  await eventually(async () => assert.equal((await get("/t5/d")).status, 404), "dir deleted");
  await eventually(async () => assert.equal(await page.evaluate(() => location.hash), "#/t5"), "back in the parent");
  await closePage(page);
});

test("copy a key and a directory (values, subdirectories, TTLs)", async () => {
  await put("/t6/src/a", "1"); await put("/t6/src/sub/b", "2", { ttl: "300" }); await put("/t6/one", "solo");
  const page = await openUI("/t6/one");
  await page.click("#copy-key");
  await page.fill("#copy-to", "/t6/two");
  await page.click("#copy-ok");
  await eventually(async () => assert.equal((await mustGet("/t6/two")).value, "solo"), "key copied");
  await openRow(page, "/t6/src", "src"); // in the directory before copying it
  await page.click("#copy-dir");
  await page.fill("#copy-to", "/t6/dst");
  await page.click("#copy-ok");
  await page.locator("#dlg-copy[open]").waitFor({ state: "detached" });
  assert.equal((await mustGet("/t6/dst/a")).value, "1");
  const b = await mustGet("/t6/dst/sub/b");
  assert.equal(b.value, "2");
  assert.ok(b.ttl > 250, "TTL copied: " + b.ttl);
  await waitText(page.locator("#crumbs"), "dst");
  await row(page, "/t6/dst/sub").waitFor();
  // a copy onto an existing path is refused
  await page.goto(BASE + "/ui/#/t6/one");
  await page.waitForSelector("#live.on");
  await page.click("#copy-key");
  await page.fill("#copy-to", "/t6/src/a");
  await page.click("#copy-ok");
  await waitText(page.locator("#copy-error"), "already exists");
  assert.equal((await mustGet("/t6/src/a")).value, "1");
  await closePage(page);
});

test("live: changes made with curl appear without a reload, highlighted; expired keys vanish", async () => {
  await put("/t7/old", "1");
  const page = await openUI("/t7/old");
  await page.evaluate(() => { window.__sameDocument = true; }); // a reload would lose it
  const t0 = Date.now();
  curl("-XPUT", BASE + keyPath("/t7/new"), "-d", "value=from-curl");
  await row(page, "/t7/new").waitFor({ timeout: 1000 });
  assert.ok(Date.now() - t0 < 1000, "within a second");
  assert.equal(await row(page, "/t7/new").locator(".c-value").textContent(), "from-curl");
  assert.ok(await row(page, "/t7/new").evaluate((e) => e.classList.contains("flash")), "highlighted");
  await shot(page, "live-change");
  curl("-XPUT", BASE + keyPath("/t7/old"), "-d", "value=2");
  await waitText(page.locator("#value"), "2", 1000); // the open key's detail follows
  await waitText(row(page, "/t7/old").locator(".c-value"), "2", 1000);
  curl("-XPUT", BASE + keyPath("/t7/sub/deep"), "-d", "value=x");
  await row(page, "/t7/sub").waitFor({ timeout: 1000 });
  curl("-XDELETE", BASE + keyPath("/t7/new"));
  await eventually(async () => assert.equal(await row(page, "/t7/new").count(), 0), "deleted row vanishes", 1000);
  curl("-XPUT", BASE + keyPath("/t7/short"), "-d", "value=x", "-d", "ttl=1");
  await row(page, "/t7/short").waitFor({ timeout: 1000 });
  await eventually(async () => assert.equal(await row(page, "/t7/short").count(), 0), "expired row vanishes", 4000);
  assert.equal((await get("/t7/short")).status, 404);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");
  await closePage(page);
});

test("safe edit: a concurrent change is shown, never overwritten silently", async () => {
  await put("/t8/k", "base");
  const page = await openUI("/t8/k");
  await page.click("#edit");
  await page.locator("#edit-value").fill("mine");
  curl("-XPUT", BASE + keyPath("/t8/k"), "-d", "value=theirs");
  await waitText(page.locator("#edit-note"), "Changed on the server", 1000);
  await page.click("#save");
  await page.locator("#dlg-conflict[open]").waitFor();
  assert.equal(await page.locator("#conflict-theirs").textContent(), "theirs");
  assert.equal(await page.locator("#conflict-mine").textContent(), "mine");
  assert.equal((await mustGet("/t8/k")).value, "theirs", "not overwritten");
  await shot(page, "conflict");
  await page.click("#dlg-conflict button[value=mine]");
  await eventually(async () => assert.equal((await mustGet("/t8/k")).value, "mine"), "overwritten on request");
  // and "take theirs" leaves the server alone
  await page.click("#edit");
  await page.locator("#edit-value").fill("mine2");
  curl("-XPUT", BASE + keyPath("/t8/k"), "-d", "value=theirs2");
  await page.click("#save"); // prevIndex makes the server refuse, whether or not the page saw it
  await page.locator("#dlg-conflict[open]").waitFor();
  await page.click("#dlg-conflict button[value=theirs]");
  await waitText(page.locator("#value"), "theirs2");
  assert.equal((await mustGet("/t8/k")).value, "theirs2");
  await closePage(page);
});

test("recent events: history on open, then live ones (action, key, index)", async () => {
  const a = await put("/t9/a", "1");
  const b = await api("DELETE", "/t9/a");
  const page = await openUI("/t9");
  const ev = (idx) => page.locator(`#events li[data-index="${idx}"]`);
  await ev(b.body.node.modifiedIndex).waitFor();
  await waitText(ev(b.body.node.modifiedIndex), "delete");
  await waitText(ev(b.body.node.modifiedIndex), "/t9/a");
  await waitText(ev(a.body.node.modifiedIndex), "set");
  const idxs = await page.$$eval("#events li", (ls) => ls.map((l) => Number(l.dataset.index)));
  assert.deepEqual(idxs, [...idxs].sort((x, y) => y - x), "newest first");
  const c = JSON.parse(curl("-XPUT", BASE + keyPath("/t9/live"), "-d", "value=1"));
  await ev(c.node.modifiedIndex).waitFor({ timeout: 1000 });
  await waitText(ev(c.node.modifiedIndex), "/t9/live");
  assert.equal(await page.locator("#events li").first().getAttribute("data-index"), String(c.node.modifiedIndex));
  await closePage(page);
});

test("find filters the loaded tree; jump opens a typed path", async () => {
  await put("/t10/alpha/needle", "1"); await put("/t10/beta/hay", "2"); await put("/t10/x/y/z/target", "deep");
  const page = await openUI("/t10");
  await treeItem(page, "/t10/alpha").locator(".tw").click();
  await treeItem(page, "/t10/beta").locator(".tw").click();
  // The filter sees what is loaded: wait until both listings arrived (a directory with no
  // subdirectories then loses its twisty).
  for (const d of ["/t10/alpha", "/t10/beta"])
    await waitText(treeItem(page, d).locator(".tw"), /^$/);
  await page.click("#find");
  await page.keyboard.type("needl");
  await eventually(async () => assert.equal(await treeItem(page, "/t10/beta").count(), 0), "beta filtered out");
  assert.equal(await treeItem(page, "/t10/alpha").count(), 1);
  assert.ok(await treeItem(page, "/t10/alpha").evaluate((e) => e.querySelector(".tl")) !== null);
  await page.fill("#find", "");
  await treeItem(page, "/t10/beta").waitFor();
  // jump
  await page.keyboard.press("Escape");
  await page.click("#jump");
  await page.keyboard.type("/t10/x/y/z/target");
  await page.keyboard.press("Enter");
  await waitText(page.locator("#detail-key"), "/t10/x/y/z/target");
  assert.equal(await page.locator("#value").textContent(), "deep");
  assert.equal(await page.evaluate(() => location.hash), "#/t10/x/y/z/target");
  await treeItem(page, "/t10/x/y/z").waitFor();
  await page.fill("#jump", "/t10/nothing");
  await page.keyboard.press("Enter");
  await waitText(page.locator("#toast"), "Not found");
  await closePage(page);
});

test("export a subtree to a file and import it elsewhere", async () => {
  await put("/t11/a", "1"); await put("/t11/d/b", "two", { ttl: "600" }); await put("/t11/d/e/c", "3");
  const page = await openUI("/t11");
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#export-dir")]);
  assert.equal(dl.suggestedFilename(), "t11.json");
  const file = path.join(SHOTS, "t11-export.json");
  await dl.saveAs(file);
  const doc = JSON.parse(fs.readFileSync(file, "utf8"));
  assert.equal(doc.quorumctl_export, 1);
  assert.equal(doc.prefix, "/t11");
  const byPath = Object.fromEntries(doc.entries.map((e) => [e.path, e]));
  assert.deepEqual(Object.keys(byPath), ["", "a", "d", "d/b", "d/e", "d/e/c"]);
  assert.equal(byPath["d/b"].value, "two");
  assert.ok(byPath["d/b"].ttl > 500);
  assert.equal(byPath["d"].dir, true);
  await page.click("#import-dir");
  await page.fill("#import-to", "/t11copy");
  await page.setInputFiles("#import-file", file);
  await page.click("#import-ok");
  await eventually(async () => assert.equal((await mustGet("/t11copy/d/e/c")).value, "3"), "imported");
  const b = await mustGet("/t11copy/d/b");
  assert.equal(b.value, "two");
  assert.ok(b.ttl > 500, "TTL imported: " + b.ttl);
  assert.equal((await mustGet("/t11copy/a")).value, "1");
  await waitText(page.locator("#crumbs"), "t11copy");
  await row(page, "/t11copy/d").waitFor();
  // a file that is not an export is refused
  const bad = path.join(SHOTS, "not-an-export.json");
  fs.writeFileSync(bad, '{"hello":1}');
  await page.click("#import-dir");
  await page.setInputFiles("#import-file", bad);
  await page.click("#import-ok");
  await waitText(page.locator("#import-error"), "not a quorumctl export");
  await closePage(page);
});

test("a directory of in-order keys is a queue with push", async () => {
  for (const v of ["j1", "j2"]) await api("POST", "/t12q", null, { value: v });
  const page = await openUI("/t12q");
  await page.locator("#queue-bar:not([hidden])").waitFor();
  await page.fill("#queue-value", "j3");
  await page.keyboard.press("Enter");
  const list = await eventually(async () => {
    const n = await mustGet("/t12q", { sorted: "true" });
    assert.equal(n.nodes.length, 3);
    return n.nodes;
  }, "pushed");
  assert.deepEqual(list.map((n) => n.value), ["j1", "j2", "j3"]);
  await row(page, list[2].key).waitFor();
  assert.deepEqual(await rowNames(page), list.map((n) => n.key));
  await waitText(page.locator("#dir-meta"), "queue");
  await shot(page, "queue");
  await closePage(page);
});

test("cluster panel: version, members, leader, stats, follower latencies", async () => {
  const page = await openUI("/");
  await page.click("#cluster-open");
  await page.locator("#c-members table").waitFor();
  const ver = await (await fetch(BASE + "/version")).json();
  await waitText(page.locator('#c-version [data-stat="etcdserver"]'), ver.etcdserver);
  const mem = (await (await fetch(BASE + "/v2/members")).json()).members;
  const self = await (await fetch(BASE + "/v2/stats/self")).json();
  for (const m of mem) {
    const tr = page.locator(`tr[data-member="${m.id}"]`);
    assert.equal(await tr.locator(".m-name").textContent(), m.name);
    assert.equal(await tr.locator(".m-client").textContent(), m.clientURLs.join(" "));
    assert.equal(await tr.locator(".m-peer").textContent(), m.peerURLs.join(" "));
  }
  assert.equal(await page.locator("#c-leader").textContent(), self.leaderInfo.leader);
  await waitText(page.locator(`tr[data-member="${self.leaderInfo.leader}"]`), "leader");
  assert.equal(await page.locator('#c-self [data-stat="name"]').textContent(), self.name);
  assert.equal(await page.locator('#c-self [data-stat="state"]').textContent(), self.state);
  const store = await (await fetch(BASE + "/v2/stats/store")).json();
  assert.ok(await page.locator('#c-store [data-stat="setsSuccess"]').count());
  assert.ok(Number(await page.locator('#c-store [data-stat="setsSuccess"]').textContent()) <= store.setsSuccess);
  const leader = await fetch(BASE + "/v2/stats/leader");
  if (leader.ok) {
    const lv = await leader.json();
    if (Object.keys(lv.followers).length === 0) await page.locator("#no-followers").waitFor();
    else for (const id of Object.keys(lv.followers)) await page.locator(`tr[data-follower="${id}"]`).waitFor();
  } else await waitText(page.locator("#c-leader-stats"), "Not available");
  // after a write, Refresh shows the new counter
  await put("/t13/x", "1");
  await page.click("#cluster-refresh");
  await waitText(page.locator('#c-store [data-stat="setsSuccess"]'), String((await (await fetch(BASE + "/v2/stats/store")).json()).setsSuccess));
  await shot(page, "cluster");
  await page.keyboard.press("Escape");
  await page.locator("#dlg-cluster[open]").waitFor({ state: "detached" });
  await closePage(page);
});

/* The cluster panel against a real 3-member Raft cluster (QUORUM_UI_CLUSTER), the page opened
 * on a follower: a follower answers 403 for /v2/stats/leader, so the page must ask the leader. */
async function jsonAt(url) {
  const r = await fetch(url);
  return { status: r.status, body: await r.json() };
}
async function clusterRoles() { // every member names the same leader, which says it leads
  const selves = await Promise.all(CLUSTER.map(async (url) => ({ url, self: (await jsonAt(url + "/v2/stats/self")).body })));
  const leads = new Set(selves.map((s) => s.self.leaderInfo && s.self.leaderInfo.leader));
  assert.equal(leads.size, 1, "members agree on the leader: " + [...leads]);
  const id = [...leads][0];
  const leader = selves.find((s) => s.self.id === id && s.self.state === "StateLeader");
  assert.ok(id && leader, "the named leader " + id + " leads");
  return { leader, followers: selves.filter((s) => s !== leader) };
}
const cellTexts = (loc) => loc.evaluateAll((es) => es.map((e) => e.textContent));

test("cluster of 3: on a follower the panel shows members, leader, stats, the leader's latencies; writes elsewhere are live", async () => {
  assert.equal(CLUSTER.length, 3, "QUORUM_UI_CLUSTER names 3 members");
  const roles = await eventually(clusterRoles, "an agreed leader");
  const L = roles.leader, F = roles.followers[0], F2 = roles.followers[1];
  await put("/c3/seed", "1", {}, L.url);
  const page = await openUI("/c3", { base: F.url });
  assert.equal(await page.evaluate(() => location.origin), F.url);
  // a key written through another member (the leader, the other follower) appears live
  await row(page, "/c3/seed").waitFor();
  for (const [via, key] of [[L.url, "/c3/via-leader"], [F2.url, "/c3/via-follower"]]) {
    const t0 = Date.now();
    curl("-XPUT", via + keyPath(key), "-d", "value=from " + via);
    await row(page, key).waitFor({ timeout: 2000 });
    assert.ok(Date.now() - t0 < 2000, "within 2 s");
    assert.equal(await row(page, key).locator(".c-value").textContent(), "from " + via);
    assert.equal((await get(key, null, F.url)).body.node.value, "from " + via, "the follower's API has it");
  }
  // the panel
  const asked = [];
  const onRequest = (r) => asked.push(r.url());
  page.on("request", onRequest);
  await page.click("#cluster-open");
  await page.locator("#c-members table").waitFor();
  await page.locator("#c-leader-stats table, #c-leader-stats p").first().waitFor();
  const now = await clusterRoles();
  assert.equal(now.leader.self.id, L.self.id, "leadership did not change during the test");
  // version
  const ver = (await jsonAt(F.url + "/version")).body;
  for (const [k, v] of Object.entries(ver)) assert.equal(await page.locator(`#c-version [data-stat="${k}"]`).textContent(), v, "version " + k);
  // members: exactly those of /v2/members (the same on every member), names, peer and client URLs
  const mem = (await jsonAt(F.url + "/v2/members")).body.members;
  const memL = (await jsonAt(L.url + "/v2/members")).body.members;
  const byId = (ms) => JSON.stringify([...ms].sort((a, b) => a.id.localeCompare(b.id)));
  assert.equal(byId(mem), byId(memL), "/v2/members is the same on the follower and the leader");
  assert.equal(mem.length, 3);
  assert.deepEqual(mem.map((m) => m.clientURLs[0]).sort(), [...CLUSTER].sort());
  const rows = page.locator("#c-members tbody tr");
  assert.deepEqual((await rows.evaluateAll((es) => es.map((e) => e.dataset.member))).sort(), mem.map((m) => m.id).sort());
  for (const m of mem) {
    const tr = page.locator(`#c-members tr[data-member="${m.id}"]`);
    assert.equal(await tr.locator(".m-name").textContent(), m.name);
    assert.equal(await tr.locator(".m-id").textContent(), m.id);
    assert.equal(await tr.locator(".m-peer").textContent(), m.peerURLs.join(" "));
    assert.equal(await tr.locator(".m-client").textContent(), m.clientURLs.join(" "));
    const isLeader = m.id === L.self.id;
    assert.equal(await tr.evaluate((e) => e.classList.contains("leader")), isLeader, m.name + " marked leader");
    assert.equal(await tr.locator("td").first().textContent(), isLeader ? "★ leader" : "");
  }
  assert.equal(mem.find((m) => m.id === L.self.id).clientURLs[0], L.url, "the leader's client URL");
  // the leader
  assert.equal(await page.locator("#c-leader").textContent(), L.self.id);
  assert.equal(F.self.leaderInfo.leader, L.self.id);
  // this member: the follower's own /v2/stats/self
  const self = (await jsonAt(F.url + "/v2/stats/self")).body;
  for (const k of ["name", "id", "state", "leaderInfo.leader", "startTime"]) {
    const v = k.split(".").reduce((o, p) => o[p], self);
    assert.equal(await page.locator(`#c-self [data-stat="${k}"]`).textContent(), String(v), "self " + k);
  }
  assert.equal(self.state, "StateFollower");
  assert.equal(self.name, mem.find((m) => m.clientURLs[0] === F.url).name, "the member the page is on");
  assert.ok(Number(await page.locator('#c-self [data-stat="recvAppendRequestCnt"]').textContent()) <= self.recvAppendRequestCnt);
  // the store: its write counters as /v2/stats/store of the follower says (reads and watchers
  // move with the page's own requests)
  const writes = (st) => Object.fromEntries(Object.entries(st).filter(([k]) => !/^gets|^watchers$/.test(k)).map(([k, v]) => [k, String(v)]));
  let lastRefresh = Date.now();
  await eventually(async () => {
    const api = writes((await jsonAt(F.url + "/v2/stats/store")).body);
    const shown = Object.fromEntries(await page.locator("#c-store dd").evaluateAll((es) => es.map((e) => [e.dataset.stat, e.textContent])));
    try {
      assert.deepEqual(writes(shown), api);
    } catch (e) {
      if (Date.now() - lastRefresh > 300) { lastRefresh = Date.now(); await page.click("#cluster-refresh"); }
      throw e;
    }
    assert.ok(Number(api.setsSuccess) >= 3, "the 3 sets applied on the follower: " + api.setsSuccess);
  }, "store stats shown = the follower's /v2/stats/store");
  // follower latencies: the follower refuses /v2/stats/leader; the page asked the leader
  const onF = await fetch(F.url + "/v2/stats/leader");
  assert.equal(onF.status, 403, "a follower answers 403 for /v2/stats/leader");
  assert.ok(asked.includes(L.url + "/v2/stats/leader"), "the page asked the leader: " + asked.join(" "));
  const lead = (await jsonAt(L.url + "/v2/stats/leader")).body;
  assert.equal(lead.leader, L.self.id);
  const fids = Object.keys(lead.followers).sort();
  assert.deepEqual(fids, [F.self.id, F2.self.id].sort(), "the leader's followers are the two others");
  const ftr = page.locator("#c-leader-stats tr[data-follower]");
  assert.deepEqual((await ftr.evaluateAll((es) => es.map((e) => e.dataset.follower))).sort(), fids);
  for (const id of fids) {
    const cells = await cellTexts(page.locator(`#c-leader-stats tr[data-follower="${id}"] td`));
    assert.equal(cells[0], mem.find((m) => m.id === id).name + " " + id);
    for (const c of cells.slice(1, 5)) assert.match(c, /^\d+\.\d{3}$/, "a latency in ms");
    assert.ok(Number(cells[5]) > 0 && Number(cells[5]) <= lead.followers[id].counts.success,
      `ok count ${cells[5]} vs the leader's ${lead.followers[id].counts.success}`);
    assert.ok(Number(cells[6]) <= lead.followers[id].counts.fail, "fail count " + cells[6]);
  }
  assert.doesNotMatch(await page.locator("#cluster-body").textContent(), /Not available|unknown|undefined|null/);
  // loads overlap (Refresh, the 5 s timer): a slow answer of an older one never replaces a newer
  let entered, release;
  const held = new Promise((r) => { entered = r; });
  const done = new Promise((r) => { release = r; });
  let n = 0;
  await page.route(L.url + "/v2/stats/leader", async (route) => {
    if (n++) return route.continue();
    entered();
    await sleep(500);
    await route.fulfill({ status: 200, contentType: "application/json", headers: { "Access-Control-Allow-Origin": "*" },
                          body: JSON.stringify({ leader: L.self.id, followers: {} }) });
    release();
  });
  await page.click("#cluster-refresh"); // the older load: its latencies are held, then say "no followers"
  await held;
  await page.click("#cluster-refresh"); // the newer one
  await done;
  await sleep(200);
  await page.unroute(L.url + "/v2/stats/leader");
  assert.ok(n >= 2, "both loads asked the leader");
  assert.equal(await page.locator("#no-followers").count(), 0, "the older load's late answer is not shown");
  assert.equal(await page.locator("#c-leader-stats tr[data-follower]").count(), 2);
  console.log("    (follower latencies: " + fids.map((id) => `${id} ${lead.followers[id].latency.current} ms`).join(", ") + ")");
  const vp = page.viewportSize();
  await page.setViewportSize({ width: vp.width, height: 1300 }); // the whole dialog in the picture
  await page.locator("#c-leader-stats").scrollIntoViewIfNeeded();
  await shot(page, "cluster-3-members");
  await page.setViewportSize(vp);
  page.off("request", onRequest);
  await page.keyboard.press("Escape");
  await page.locator("#dlg-cluster[open]").waitFor({ state: "detached" });
  await closePage(page);
});

test("the endpoint is in the URL: the page served by one daemon works on another", async () => {
  assert.ok(BASE2, "QUORUM_UI_URL2 is set");
  await put("/only/on/b", "bee", {}, BASE2);
  const page = await openUI("/only/on/b", { query: "?endpoint=" + encodeURIComponent(BASE2) });
  assert.equal(await page.inputValue("#endpoint"), BASE2);
  await waitText(page.locator("#value"), "bee");
  await page.click("#edit");
  await page.locator("#edit-value").fill("bee2");
  await page.click("#save");
  await eventually(async () => assert.equal((await get("/only/on/b", null, BASE2)).body.node.value, "bee2"), "written to B");
  assert.equal((await get("/only/on/b")).status, 404, "nothing written to A");
  curl("-XPUT", BASE2 + keyPath("/only/on/c"), "-d", "value=live-b");
  await row(page, "/only/on/c").waitFor({ timeout: 1000 });
  // typing another endpoint switches to it
  await page.fill("#endpoint", BASE);
  await page.keyboard.press("Enter");
  await page.waitForURL((u) => !u.search.includes("endpoint"));
  await page.waitForSelector("#live.on");
  await waitText(page.locator("#toast"), "Not found");
  await closePage(page);
});

test("keyboard: move, open, edit and save, shortcuts, tree arrows", async () => {
  await put("/t14/a", "1"); await put("/t14/b", "2"); await put("/t14/sub/c", "3");
  const page = await openUI("/t14");
  await page.locator("#rows").focus();
  await page.keyboard.press("ArrowDown"); // sub, a, b: cursor 0 -> 1 (a)
  await page.keyboard.press("ArrowDown"); // b
  await page.keyboard.press("Enter");
  await waitText(page.locator("#detail-key"), "/t14/b");
  await page.keyboard.press("e");
  await page.keyboard.press("Control+A");
  await page.keyboard.type("typed");
  await page.keyboard.press("Control+Enter");
  await eventually(async () => assert.equal((await mustGet("/t14/b")).value, "typed"), "saved by keyboard");
  await page.locator("#edit-value").waitFor({ state: "detached" });
  await waitText(page.locator("#value"), "typed");
  await page.keyboard.press("Home");
  await page.keyboard.press("Enter"); // into sub
  await waitText(page.locator("#crumbs"), "sub");
  await page.keyboard.press("Backspace");
  await eventually(async () => assert.equal(await page.evaluate(() => location.hash), "#/t14"), "back up");
  await page.keyboard.press("n");
  await page.locator("#dlg-create[open]").waitFor();
  await page.keyboard.type("made");
  await page.keyboard.press("Tab");
  await page.keyboard.type("by keys");
  await page.keyboard.press("Tab"); // to the TTL field; Enter there submits the form
  await page.keyboard.press("Enter");
  await eventually(async () => assert.equal((await mustGet("/t14/made")).value, "by keys"), "created by keyboard");
  // The dialog closes and the table re-renders with the new row before focus is moved on
  // (a re-render finishing later would take the focus back).
  await page.locator("#dlg-create[open]").waitFor({ state: "detached" });
  await eventually(async () => assert.ok((await rowNames(page)).includes("/t14/made")), "new row shown");
  await page.locator("#rows").focus();
  await page.keyboard.press("/");
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement.id), "find"), "find focused");
  await page.keyboard.press("Escape");
  await page.keyboard.press("t");
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement.dataset.key), "/t14"), "tree focused");
  await page.keyboard.press("ArrowRight"); // already open: to first child
  await eventually(async () => assert.equal(await page.evaluate(() => document.activeElement.dataset.key), "/t14/sub"), "tree child");
  await page.keyboard.press("Enter");
  await waitText(page.locator("#crumbs"), "sub");
  assert.equal((await rowNames(page))[0], "/t14/sub/c");
  await page.keyboard.press("Delete"); // a key: deleted at once
  await eventually(async () => assert.equal((await get("/t14/sub/c")).status, 404), "deleted by keyboard");
  await closePage(page);
});

test("phone: one column, no sideways scrolling, tree in a drawer", async () => {
  await put("/t15/k", "phone value");
  for (let i = 0; i < 30; i++) await put("/t15/a" + String(i).padStart(2, "0"), "filler");
  const page = await openUI("/t15/k", { viewport: { width: 390, height: 844 }, mobile: true });
  await waitText(page.locator("#value"), "phone value");
  assert.doesNotMatch(await page.locator("#detail").textContent(), /null|undefined/);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, "no horizontal overflow: " + overflow);
  assert.equal(await page.locator("#sidebar").isVisible(), false);
  await page.screenshot({ path: path.join(SHOTS, "phone.png"), fullPage: true });
  await page.click("#tree-toggle");
  await page.locator("#sidebar").waitFor({ state: "visible" });
  await treeItem(page, "/").locator(".tn").first().click();
  await page.locator("#sidebar").waitFor({ state: "hidden" });
  await row(page, "/t15").tap();
  await row(page, "/t15/a00").waitFor();
  await page.locator("#rows").evaluate((e) => { e.scrollTop = e.scrollHeight; }); // a swipe up the list
  await row(page, "/t15/k").waitFor();
  const box = await row(page, "/t15/k").boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 391, "row fits the screen");
  await page.evaluate(() => window.scrollTo(0, 0));
  assert.ok((await page.locator("#detail").boundingBox()).y > 600, "the key panel starts low on the screen");
  await row(page, "/t15/k").tap(); // the key's panel comes into view
  await eventually(async () => {
    const d = await page.locator("#value").boundingBox();
    assert.ok(d && d.y >= 0 && d.y + d.height <= 844, "value on screen: " + JSON.stringify(d));
  }, "value scrolled into view");
  await closePage(page);
});

test("a directory of 10,000 keys renders only what is visible and stays live", async () => {
  const N = 10000, t00 = Date.now();
  const names = Array.from({ length: N }, (_, i) => "k" + String(i).padStart(5, "0"));
  for (let i = 0; i < N; i += 200) { // many writes in flight: the daemon commits them in groups
    await Promise.all(names.slice(i, i + 200).map((n) => put("/big/" + n, "v" + n)));
  }
  console.log(`    (10,000 keys written in ${Date.now() - t00} ms)`);
  const t0 = Date.now();
  const page = await openUI("/big");
  await row(page, "/big/k00000").waitFor();
  const openMs = Date.now() - t0;
  const dom = await page.locator("#rows .row").count();
  assert.ok(dom > 10 && dom < 120, "rows in the DOM: " + dom);
  assert.equal(await page.locator("#rows").getAttribute("aria-rowcount"), String(N));
  await page.locator("#rows").focus();
  const t1 = Date.now();
  await page.keyboard.press("End");
  await row(page, "/big/k09999").waitFor();
  assert.ok(Date.now() - t1 < 1000, "jump to the end is fast");
  assert.ok(await page.locator("#rows .row").count() < 120);
  curl("-XPUT", BASE + keyPath("/big/k09999"), "-d", "value=changed");
  await waitText(row(page, "/big/k09999").locator(".c-value"), "changed", 1000);
  await page.keyboard.press("Home");
  await row(page, "/big/k00000").waitFor();
  await page.locator("#rows").hover();
  await page.mouse.wheel(0, 100 * 32);
  await row(page, "/big/k00110").waitFor();
  assert.equal(await row(page, "/big/k00000").count(), 0, "rows scrolled away are gone");
  await page.fill("#find", "k0777");
  await eventually(async () => assert.equal(await page.locator("#rows").getAttribute("aria-rowcount"), "10"), "filtered 10,000");
  await shot(page, "big-dir");
  // a directory of many directories: the tree shows the first 500 and points to the table
  await Promise.all(Array.from({ length: 520 }, (_, i) => put(`/bigd/d${String(i).padStart(3, "0")}/x`, "1")));
  await page.fill("#find", "");
  await page.click("#jump");
  await page.keyboard.type("/bigd");
  await page.keyboard.press("Enter");
  await eventually(async () => assert.equal(await page.locator("#rows").getAttribute("aria-rowcount"), "520"), "520 dirs listed");
  await waitText(page.locator("#tree .more"), "20 more directories");
  assert.equal(await page.locator('#tree [role=treeitem][data-key^="/bigd/"]').count(), 500);
  console.log(`    (10,000 keys: page ready in ${openMs} ms)`);
  assert.ok(openMs < 8000, "opens within 8 s");
  await closePage(page);
});

/* ------------------------------------------------------------------ runner */
const started = Date.now();
browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
let passed = 0, failed = 0;
for (const t of tests) {
  if (ONLY && !ONLY.test(t.name)) continue;
  const t0 = Date.now();
  pageErrors.length = 0;
  try {
    await t.fn();
    if (pageErrors.length) throw new Error("errors in the page: " + pageErrors.join(" | "));
    passed++;
    console.log(`ok   ${t.name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${t.name} (${Date.now() - t0} ms)\n     ${(e && e.stack || String(e)).split("\n").join("\n     ")}`);
    for (const ctx of browser.contexts()) {
      for (const p of ctx.pages()) {
        try { await p.screenshot({ path: path.join(SHOTS, "FAILED-" + t.name.replace(/\W+/g, "_").slice(0, 40) + ".png") }); } catch (_) { /* closed */ }
      }
      await ctx.close().catch(() => {});
    }
    shared = null;
  }
}
await browser.close();
console.log(`ui e2e: ${((Date.now() - started) / 1000).toFixed(1)} s, screenshots in ${SHOTS}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || !passed ? 1 : 0);
