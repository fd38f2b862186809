/* quorumd web UI: the whole client. It talks only to the public etcd v2 API of ENDPOINT
 * (?endpoint=URL, default this page's origin), so it works against any v2 server that
 * sends CORS headers.
 *
 * Model: `nodes` maps a key ("/a/b") to its node; a directory's children are loaded on
 * demand (one non-recursive GET) and kept current by ONE recursive stream watch. A listing
 * and the watch race, so every event received while a listing was in flight is applied
 * again on top of it (events carry indexes; older ones are ignored).
 * Views: tree of directories (lazy), table of the open directory (virtual: only the visible
 * rows exist), detail of the selected key, recent events, cluster dialog. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const ROW_H = 32;
  const QUEUE_NAME = /^\d{20}$/;
  const FLASH_MS = 1600;
  const TREE_MAX = 500;
  const POLL_MS = 2000; // reloads of what is shown, for a user who may not watch (pollInstead)

  /* ---------------------------------------------------------------- endpoint and API */
  const params = new URLSearchParams(location.search);
  const ENDPOINT = (params.get("endpoint") || location.origin).replace(/\/+$/, "");

  /* /v2/auth: the signed-in user's "Basic ..." credentials for this endpoint, kept for the
   * browser tab (sessionStorage); none means the server's guest role. */
  const AUTH_KEY = "quorumd-ui-auth:" + ENDPOINT;
  let auth = sessionStorage.getItem(AUTH_KEY) || "";
  function authUser() { try { return auth ? atob(auth.slice(6)).replace(/:.*$/s, "") : ""; } catch (e) { return ""; } }
  function withAuth(headers) {
    const h = Object.assign({}, headers || {});
    if (auth) h.Authorization = auth;
    return h;
  }
  /* An answer of 401 (etcd: errorCode 110, or {"message":"Insufficient credentials"} off
   * /v2/keys): the page asks for a user and password. */
  function needsSignIn(status, body) {
    return status === 401 && (!body || body.errorCode === 110 || body.errorCode === undefined);
  }

  function keyURL(key, query) {
    const enc = key.split("/").map(encodeURIComponent).join("/");
    let u = ENDPOINT + "/v2/keys" + (enc.startsWith("/") ? enc : "/" + enc);
    if (query) u += "?" + new URLSearchParams(query).toString();
    return u;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message ? body.message + (body.cause ? " (" + body.cause + ")" : "") : "HTTP " + status));
      this.status = status;
      this.body = body || {};
      this.code = this.body.errorCode;
    }
  }

  /* One v2 request: resolves to {body, index} or throws ApiError. quiet: a refusal does not
   * open the sign-in. */
  async function api(method, key, query, form, quiet) {
    const opt = { method, headers: withAuth() };
    if (form) {
      opt.body = new URLSearchParams(form).toString();
      opt.headers["Content-Type"] = "application/x-www-form-urlencoded";
    }
    const res = await fetch(keyURL(key, query), opt);
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = { message: text.trim() }; }
    if (!res.ok) {
      if (!quiet && needsSignIn(res.status, body)) openSignIn(true);
      throw new ApiError(res.status, body);
    }
    const h = res.headers.get("X-Etcd-Index");
    return { body, index: h !== null ? Number(h) : null };
  }

  async function getJSON(path) {
    const res = await fetch(ENDPOINT + path, { headers: withAuth() });
    const text = await res.text();
    let body = null;
    try { body = JSON.parse(text); } catch (e) { body = text; }
    if (!res.ok) throw new ApiError(res.status, typeof body === "object" ? body : { message: String(body).trim() });
    return body;
  }

  /* The store's current index, also when the header is not exposed (another origin): an
   * error answer carries it in its body. */
  async function currentIndex() {
    try {
      await api("GET", join(scope, "_quorumd_ui_probe_" + Math.random().toString(36).slice(2)));
    } catch (e) {
      if (e.body && typeof e.body.index === "number") return e.body.index;
      throw e;
    }
    return 0;
  }

  /* ---------------------------------------------------------------- model */
  /* The directory the page loads and watches: "/", or for a user who may not read "/" (roles
   * granting a subtree), the highest directory on the way to the opened path that the user
   * may read. The directories above it are shown with that one child and never loaded. */
  let scope = "/";
  const nodes = new Map();
  const flashes = new Map(); // key -> time it changed (for the highlight)

  function parentOf(key) {
    if (key === "/") return null;
    const i = key.lastIndexOf("/");
    return i <= 0 ? "/" : key.slice(0, i);
  }
  function baseName(key) { return key === "/" ? "/" : key.slice(key.lastIndexOf("/") + 1); }
  function join(dir, name) { return dir === "/" ? "/" + name : dir + "/" + name; }
  function normPath(p) {
    const parts = [];
    for (const s of String(p).split("/")) {
      if (!s || s === ".") continue;
      if (s === "..") parts.pop(); else parts.push(s);
    }
    return "/" + parts.join("/");
  }

  function makeNode(key, n) {
    const node = { key, dir: !!(n && n.dir), value: "", ttl: 0, expiresAt: 0, createdIndex: 0, modifiedIndex: 0,
                   children: null, sorted: null };
    if (n) fill(node, n);
    return node;
  }
  function fill(node, n) {
    node.dir = !!n.dir;
    node.value = n.dir ? "" : (n.value === undefined ? "" : n.value);
    node.ttl = n.ttl || 0;
    node.expiresAt = n.ttl ? Date.now() + n.ttl * 1000 : 0;
    node.createdIndex = n.createdIndex || 0;
    node.modifiedIndex = n.modifiedIndex || 0;
    if (!node.dir) { node.children = null; node.sorted = null; }
  }
  function ttlLeft(node) {
    return node.expiresAt ? Math.max(0, Math.ceil((node.expiresAt - Date.now()) / 1000)) : 0;
  }

  function setChild(parent, node) {
    if (!parent.children) return;
    parent.children.set(baseName(node.key), node);
    parent.sorted = null;
  }
  function dropSubtree(node) {
    const stack = [node];
    while (stack.length) {
      const n = stack.pop();
      if (nodes.get(n.key) === n) nodes.delete(n.key);
      if (n.children) for (const c of n.children.values()) stack.push(c);
    }
  }
  function removeNode(key) {
    const node = nodes.get(key);
    if (!node) return;
    dropSubtree(node);
    const p = nodes.get(parentOf(key));
    if (p && p.children) { p.children.delete(baseName(key)); p.sorted = null; }
  }
  /* Children in display order: directories first, then keys, each by name. */
  function sortedChildren(dir) {
    if (!dir || !dir.children) return [];
    if (!dir.sorted) {
      dir.sorted = Array.from(dir.children.values()).sort((a, b) => {
        if (a.dir !== b.dir) return a.dir ? -1 : 1;
        const x = baseName(a.key), y = baseName(b.key);
        return x < y ? -1 : x > y ? 1 : 0;
      });
    }
    return dir.sorted;
  }
  function isQueue(dir) {
    if (!dir || !dir.children || dir.children.size === 0) return false;
    for (const name of dir.children.keys()) if (!QUEUE_NAME.test(name)) return false;
    return true;
  }

  let eventSeq = 0;
  const replayBuf = []; // {seq, ev}: events recently received, for listings in flight
  let inflight = 0;

  /* Loads one directory's children (one GET) and merges them in. */
  async function loadDir(key, quiet) {
    const seqAtSend = eventSeq;
    inflight++;
    let res;
    try {
      res = await api("GET", key, { sorted: "true" }, null, quiet);
    } finally {
      inflight--;
    }
    const n = res.body.node;
    let node = nodes.get(key);
    if (!n.dir) { // it is a key
      if (!node) { node = makeNode(key, n); nodes.set(key, node); } else fill(node, n);
      const p = nodes.get(parentOf(key));
      if (p) setChild(p, node);
      return res;
    }
    if (!node) { node = makeNode(key, n); nodes.set(key, node); } else if (key !== "/") fill(node, n);
    node.dir = true;
    const old = node.children || new Map();
    node.children = new Map();
    node.sorted = null;
    for (const c of n.nodes || []) {
      let cn = old.get(baseName(c.key));
      if (cn && cn.dir === !!c.dir) fill(cn, c);
      else { if (cn) removeNode(cn.key); cn = makeNode(c.key, c); }
      nodes.set(c.key, cn);
      node.children.set(baseName(c.key), cn);
    }
    for (const [name, cn] of old) if (!node.children.has(name)) dropSubtree(cn);
    for (const r of replayBuf) if (r.seq > seqAtSend) applyEvent(r.ev, true);
    if (node.key !== "/" ) { const p = nodes.get(parentOf(key)); if (p) setChild(p, node); }
    return res;
  }

  /* Applies one watch event to the loaded part of the tree. */
  function applyEvent(ev, replay) {
    const n = ev.node;
    if (!n || !n.key) return;
    const idx = n.modifiedIndex || 0;
    const existing = nodes.get(n.key);
    switch (ev.action) {
      case "delete": case "compareAndDelete": case "expire":
        if (existing && existing.modifiedIndex < idx) {
          removeNode(n.key);
          if (!replay) flashes.delete(n.key);
        }
        break;
      default: { // set create update compareAndSwap
        if (existing && existing.modifiedIndex >= idx && existing.dir === !!n.dir) break;
        // Walk down the loaded part; parents the write created implicitly appear as dirs.
        const parts = n.key.split("/").filter(Boolean);
        let cur = nodes.get("/");
        for (let i = 0; i < parts.length && cur && cur.children; i++) {
          const k = "/" + parts.slice(0, i + 1).join("/");
          const last = i === parts.length - 1;
          let c = nodes.get(k);
          if (last) {
            if (c && c.dir !== !!n.dir) { removeNode(k); c = null; }
            if (c) {
              const wasDir = c.dir;
              fill(c, n);
              if (wasDir && !c.children) c.children = null;
            } else { c = makeNode(k, n); if (n.dir) c.children = new Map(); nodes.set(k, c); }
            setChild(cur, c);
            if (!replay) flashes.set(k, Date.now());
          } else if (!c || !c.dir) {
            if (c) removeNode(k);
            c = makeNode(k, { dir: true, modifiedIndex: idx, createdIndex: idx });
            nodes.set(k, c);
            setChild(cur, c);
            if (!replay) flashes.set(k, Date.now());
          }
          cur = c;
        }
      }
    }
  }

  /* ---------------------------------------------------------------- UI state */
  const ui = {
    dir: "/",          // the directory in the table
    selected: null,    // key in the detail panel
    cursor: 0,         // keyboard row in the table
    expanded: new Set(["/"]),
    filter: "",
    editing: null,     // {key, baseIndex, baseValue} while the editor is open
    treeFocus: "/",
  };
  const events = []; // {action, key, index, t, history}

  function toast(msg, kind) {
    const t = $("toast");
    t.textContent = msg;
    t.className = "toast " + (kind || "");
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  function fmtTTL(s) {
    if (!s) return "";
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  }

  function hashKey() {
    const h = location.hash.replace(/^#/, "");
    if (!h) return "/";
    try { return normPath(h.split("/").map(decodeURIComponent).join("/")); } catch (e) { return normPath(h); }
  }
  function setHash(key) {
    const h = "#" + key.split("/").map(encodeURIComponent).join("/");
    if (location.hash !== h) history.pushState(null, "", h);
  }

  /* ---------------------------------------------------------------- navigation */
  /* Opens key: a directory goes into the table; a key opens in the detail (its directory in
   * the table). Loads every directory on the way. */
  async function navigate(key, opts) {
    key = normPath(key);
    opts = opts || {};
    const parts = key.split("/").filter(Boolean);
    let path = "/";
    try {
      for (let i = 0; i <= parts.length; i++) {
        path = i === 0 ? "/" : "/" + parts.slice(0, i).join("/");
        const node = nodes.get(path);
        if (node && node.above) {
          /* above the scope: nothing to load */
        } else if (i === parts.length) {
          if (!node || node.dir && !node.children || opts.reload) await loadDir(path);
        } else if (!node || !node.children) {
          await loadDir(path);
        }
        const now = nodes.get(path);
        if (!now) throw new ApiError(404, { message: "Key not found", cause: path });
        if (!now.dir) break;
        ui.expanded.add(path);
      }
    } catch (e) {
      toast(e.code === 100 || e.status === 404 ? "Not found: " + key : "Error: " + e.message, "bad");
      if (opts.fromHash && key !== "/") return navigate(parentOf(key) || "/", { fromHash: true, keepHash: true });
      return false;
    }
    const node = nodes.get(key);
    if (node.dir) {
      if (ui.dir !== key) { ui.dir = key; ui.cursor = 0; $("rows").scrollTop = 0; }
      ui.selected = key === "/" ? null : key;
      ui.treeFocus = key;
    } else {
      const p = parentOf(key);
      if (ui.dir !== p) { ui.dir = p; $("rows").scrollTop = 0; }
      ui.selected = key;
      ui.treeFocus = p;
      const i = sortedChildren(nodes.get(p)).findIndex((c) => c.key === key);
      if (i >= 0) { ui.cursor = i; scrollRowIntoView(i); }
    }
    if (ui.editing && ui.editing.key !== ui.selected) ui.editing = null;
    if (!opts.keepHash) setHash(key);
    render();
    return true;
  }

  /* ---------------------------------------------------------------- rendering */
  let renderQueued = false;
  function render() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; renderNow(); });
  }
  function renderNow() {
    // The open directory may have been deleted (here or anywhere): show what is left above it.
    if (!nodes.get(ui.dir)) {
      while (!nodes.get(ui.dir) && ui.dir !== "/") ui.dir = parentOf(ui.dir);
      history.replaceState(null, "", "#" + ui.dir.split("/").map(encodeURIComponent).join("/"));
    }
    renderTree();
    renderDir();
    renderDetail();
    renderEvents();
  }

  function matchesFilter(key) { return !ui.filter || key.toLowerCase().includes(ui.filter); }
  /* Under a filter: a directory is shown when it or anything loaded below it matches. */
  function visibleInTree(node) {
    if (!ui.filter) return true;
    if (matchesFilter(node.key)) return true;
    if (!node.children) return false;
    for (const c of node.children.values()) if (visibleInTree(c)) return true;
    return false;
  }

  function renderTree() {
    const root = nodes.get("/");
    const ul = $("tree");
    const hadFocus = ul.contains(document.activeElement);
    const frag = document.createDocumentFragment();
    if (root) frag.append(treeItem(root, 1));
    ul.replaceChildren(frag);
    if (hadFocus) { // rebuilt under the keyboard: keep the focus where it was
      const li = ul.querySelector(`[role=treeitem][data-key="${CSS.escape(ui.treeFocus)}"]`);
      if (li) li.focus({ preventScroll: true });
    }
  }
  function treeItem(node, level) {
    const open = ui.expanded.has(node.key) && !!node.children;
    const subdirs = node.children ? sortedChildren(node).filter((c) => c.dir && visibleInTree(c)) : [];
    const leafKnown = node.children && subdirs.length === 0;
    const hit = ui.filter && node.key !== "/" && matchesFilter(node.key);
    const li = el("li", {
      role: "treeitem", "aria-level": level, "data-key": node.key,
      "aria-expanded": leafKnown ? false : String(!!(open || (ui.filter && node.children && subdirs.length))),
      "aria-selected": String(ui.dir === node.key),
      tabindex: ui.treeFocus === node.key ? "0" : "-1",
      class: "ti" + (flashOn(node.key) ? " flash" : "") + (hit ? " hit" : ""),
    });
    const label = el("div", { class: "tl" },
      el("span", { class: "tw", "data-toggle": node.key, text: leafKnown ? "" : (open ? "▾" : "▸") }),
      el("span", { class: "tn", text: node.key === "/" ? "/" : baseName(node.key) }),
      node.ttl ? el("span", { class: "ttlmini", "data-ttl": node.key, text: fmtTTL(ttlLeft(node)) }) : null);
    li.append(label);
    if ((open || (ui.filter && node.children)) && subdirs.length) {
      const ul = el("ul", { role: "group" });
      // The tree stays small: past TREE_MAX subdirectories the table (virtual) lists the rest.
      for (const c of subdirs.slice(0, TREE_MAX)) ul.append(treeItem(c, level + 1));
      if (subdirs.length > TREE_MAX)
        ul.append(el("li", { role: "none", class: "more" },
          el("a", { href: "#" + node.key.split("/").map(encodeURIComponent).join("/"),
                    text: `… ${subdirs.length - TREE_MAX} more directories` })));
      li.append(ul);
    }
    return li;
  }
  function flashOn(key) {
    const t = flashes.get(key);
    return t && Date.now() - t < FLASH_MS;
  }

  function dirRows() {
    const dir = nodes.get(ui.dir);
    const all = sortedChildren(dir);
    return ui.filter ? all.filter((c) => matchesFilter(c.key)) : all;
  }

  function renderDir() {
    const dir = nodes.get(ui.dir);
    // Breadcrumbs
    const crumbs = $("crumbs");
    crumbs.replaceChildren();
    const parts = ui.dir.split("/").filter(Boolean);
    crumbs.append(el("a", { href: "#/", text: "/" }));
    for (let i = 0; i < parts.length; i++) {
      const k = "/" + parts.slice(0, i + 1).join("/");
      crumbs.append(el("a", { href: "#" + k.split("/").map(encodeURIComponent).join("/"), text: parts[i] }),
                    el("span", { class: "sep", text: "/" }));
    }
    const queue = isQueue(dir);
    $("queue-bar").hidden = !queue;
    const rows = dirRows();
    const nk = rows.filter((r) => !r.dir).length;
    $("dir-meta").textContent = dir && dir.children
      ? `${nk} keys, ${rows.length - nk} dirs` + (dir.ttl ? " · TTL " + fmtTTL(ttlLeft(dir)) : "") + (queue ? " · in-order queue" : "")
      : "";
    $("delete-dir").disabled = ui.dir === "/";
    $("copy-dir").disabled = ui.dir === "/";
    $("dir-empty").hidden = !(dir && dir.children && rows.length === 0);
    const grid = $("rows");
    grid.setAttribute("aria-rowcount", rows.length);
    grid.style.setProperty("--n", String(rows.length)); // a phone sizes the list to its rows
    grid.classList.toggle("queue", queue);
    $("rows-spacer").style.height = rows.length * ROW_H + "px";
    if (ui.cursor >= rows.length) ui.cursor = Math.max(0, rows.length - 1);
    renderRows(rows);
  }

  /* Only the rows in view (plus a margin) exist in the DOM. */
  function renderRows(rows) {
    const grid = $("rows");
    rows = rows || dirRows();
    const top = grid.scrollTop, h = grid.clientHeight || 400;
    const first = Math.max(0, Math.floor(top / ROW_H) - 10);
    const last = Math.min(rows.length, Math.ceil((top + h) / ROW_H) + 10);
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) frag.append(rowEl(rows[i], i));
    for (const old of Array.from(grid.querySelectorAll(".row"))) old.remove();
    grid.append(frag);
    const cur = rows[ui.cursor];
    if (cur) grid.setAttribute("aria-activedescendant", "row-" + ui.cursor);
    else grid.removeAttribute("aria-activedescendant");
  }
  function rowEl(node, i) {
    const name = baseName(node.key);
    let preview = node.dir ? "" : node.value;
    if (preview.length > 200) preview = preview.slice(0, 200) + "…";
    const r = el("div", {
      role: "row", id: "row-" + i, "aria-rowindex": i + 1, "data-key": node.key,
      class: "row" + (node.dir ? " dir" : "") + (i === ui.cursor ? " cursor" : "") +
             (ui.selected === node.key ? " sel" : "") + (flashOn(node.key) ? " flash" : ""),
      "aria-selected": String(ui.selected === node.key),
    },
      el("span", { role: "gridcell", class: "c-name", title: node.key, text: (node.dir ? "▸ " : "") + name + (node.dir ? "/" : "") }),
      el("span", { role: "gridcell", class: "c-value", text: preview.replace(/\s+/g, " ") }),
      el("span", { role: "gridcell", class: "c-ttl", "data-ttl": node.key, text: fmtTTL(ttlLeft(node)) }),
      el("span", { role: "gridcell", class: "c-idx", text: String(node.modifiedIndex) }));
    r.style.transform = `translateY(${i * ROW_H}px)`;
    return r;
  }
  function scrollRowIntoView(i) {
    const grid = $("rows");
    const y = i * ROW_H;
    if (y < grid.scrollTop) grid.scrollTop = y;
    else if (y + ROW_H > grid.scrollTop + grid.clientHeight) grid.scrollTop = y + ROW_H - grid.clientHeight;
  }

  function prettyJSON(v) {
    const t = v.trim();
    if (!t || (t[0] !== "{" && t[0] !== "[")) return null;
    try { return JSON.stringify(JSON.parse(t), null, 2); } catch (e) { return null; }
  }

  let detailView = "pretty"; // or "raw"
  function renderDetail() {
    const box = $("detail");
    const key = ui.selected;
    const node = key && nodes.get(key);
    if (ui.editing && document.activeElement && box.contains(document.activeElement) &&
        ui.editing.key === key && box.querySelector("#edit-value")) {
      // Do not rebuild under the typing person; just keep the TTL fresh and note changes.
      updateDetailLive(node);
      return;
    }
    // a TTL being typed survives the rebuild that any live change makes, and so does the focus
    // of its (still empty) field: keys typed next must not go to a field no longer shown
    const oldTTL = box.querySelector("#ttl-input");
    const ttlFocused = !!oldTTL && document.activeElement === oldTTL;
    const typedTTL = oldTTL && box.dataset.key === key && (oldTTL.value !== "" || ttlFocused) ?
      { value: oldTTL.value, focused: ttlFocused } : null;
    box.dataset.key = key || "";
    if (!key) { box.replaceChildren(el("p", { class: "muted", text: "Select a key." })); return; }
    if (!node) {
      box.replaceChildren(el("h2", { class: "dk", text: key }),
                          el("p", { class: "gone", id: "detail-gone", text: "This key no longer exists." }));
      return;
    }
    const meta = el("dl", { class: "meta" },
      el("dt", { text: "createdIndex" }), el("dd", { id: "d-created", text: String(node.createdIndex) }),
      el("dt", { text: "modifiedIndex" }), el("dd", { id: "d-modified", text: String(node.modifiedIndex) }),
      el("dt", { text: "TTL" }), el("dd", { id: "d-ttl", "data-ttl": node.key, text: node.ttl ? fmtTTL(ttlLeft(node)) : "none" }));
    const ttlForm = el("form", { class: "ttlform", id: "ttl-form", autocomplete: "off" },
      el("label", { for: "ttl-input", text: "TTL" }),
      el("input", { id: "ttl-input", type: "number", min: "1", step: "1", placeholder: "seconds" }),
      el("button", { id: "ttl-set", type: "submit", text: "Set TTL" }),
      el("button", { id: "ttl-clear", type: "button", text: "Clear TTL", disabled: !node.ttl }));
    if (typedTTL) {
      const input = ttlForm.querySelector("#ttl-input");
      input.value = typedTTL.value;
      if (typedTTL.focused) queueMicrotask(() => input.focus());
    }
    ttlForm.addEventListener("submit", (e) => { e.preventDefault(); setTTL(node.key, $("ttl-input").value); });
    ttlForm.querySelector("#ttl-clear").addEventListener("click", () => clearTTL(node.key));
    const head = el("h2", { class: "dk", id: "detail-key", text: node.key + (node.dir ? "/" : "") });
    if (node.dir) {
      box.replaceChildren(head, el("p", { class: "muted", text: "Directory" }), meta, ttlForm);
      return;
    }
    const actions = el("div", { class: "actions left" },
      el("button", { id: "edit", text: "Edit", title: "Edit (e)", onclick: () => startEdit(node.key) }),
      el("button", { id: "copy-key", text: "Copy…", onclick: () => openCopy(node.key) }),
      el("button", { id: "delete-key", class: "danger", text: "Delete", onclick: () => deleteKey(node.key) }));
    let body;
    if (ui.editing && ui.editing.key === node.key) {
      const ta = el("textarea", { id: "edit-value", rows: "10", spellcheck: "false", "aria-label": "Value" });
      ta.value = ui.editing.draft !== undefined ? ui.editing.draft : node.value;
      ta.addEventListener("input", () => { ui.editing.draft = ta.value; });
      ta.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); saveEdit(); }
        if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); cancelEdit(); }
      });
      body = el("div", { class: "editor" },
        el("p", { id: "edit-note", class: "note", hidden: true }),
        ta,
        el("div", { class: "actions left" },
          el("button", { id: "save", class: "primary", text: "Save", title: "Save (Ctrl+Enter)", onclick: saveEdit }),
          el("button", { id: "cancel-edit", text: "Cancel", onclick: cancelEdit })),
        node.ttl ? el("p", { class: "muted", text: "The key keeps its TTL when saved." }) : null);
      box.replaceChildren(head, meta, body, ttlForm);
      updateDetailLive(node);
      return;
    }
    const pretty = prettyJSON(node.value);
    const tabs = pretty ? el("div", { class: "tabs", role: "tablist" },
      el("button", { role: "tab", id: "view-pretty", "aria-selected": String(detailView === "pretty"), text: "JSON",
                     onclick: () => { detailView = "pretty"; renderDetail(); } }),
      el("button", { role: "tab", id: "view-raw", "aria-selected": String(detailView !== "pretty"), text: "Raw",
                     onclick: () => { detailView = "raw"; renderDetail(); } })) : null;
    const showPretty = pretty && detailView === "pretty";
    body = el("pre", { id: "value", class: "value" + (showPretty ? " json" : ""), tabindex: "0" },
              showPretty ? highlightJSON(pretty) : node.value);
    box.replaceChildren(...[head, meta, tabs, body, actions, ttlForm].filter(Boolean));
  }
  function updateDetailLive(node) {
    const note = $("edit-note");
    if (!note) return;
    if (!node) { note.hidden = false; note.textContent = "Deleted on the server meanwhile."; return; }
    if (ui.editing && node.modifiedIndex !== ui.editing.baseIndex) {
      note.hidden = false;
      note.textContent = `Changed on the server meanwhile (index ${node.modifiedIndex}); saving will ask first.`;
    }
    const d = $("d-modified");
    if (d) d.textContent = String(node.modifiedIndex);
  }
  function highlightJSON(text) {
    const frag = document.createDocumentFragment();
    const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
    let last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) frag.append(text.slice(last, m.index));
      if (m[1]) {
        frag.append(el("span", { class: m[2] ? "j-key" : "j-str", text: m[1] }));
        if (m[2]) frag.append(m[2]);
      } else if (m[3]) frag.append(el("span", { class: "j-lit", text: m[3] }));
      else frag.append(el("span", { class: "j-num", text: m[4] }));
      last = re.lastIndex;
    }
    frag.append(text.slice(last));
    return frag;
  }

  function renderEvents() {
    const ol = $("events");
    const frag = document.createDocumentFragment();
    for (const e of events.slice(0, 50)) {
      const li = el("li", { class: "ev " + e.action + (e.history ? " hist" : ""), "data-index": e.index },
        el("span", { class: "ea", title: e.action, text: e.action }),
        el("a", { class: "ek", href: "#" + e.key.split("/").map(encodeURIComponent).join("/"), text: e.key }),
        el("span", { class: "ei", text: String(e.index) }));
      frag.append(li);
    }
    ol.replaceChildren(frag);
  }

  /* TTL counters and highlights tick without rebuilding the views. */
  setInterval(() => {
    for (const e of document.querySelectorAll("[data-ttl]")) {
      const n = nodes.get(e.getAttribute("data-ttl"));
      if (!n) continue;
      const left = ttlLeft(n);
      e.textContent = n.ttl ? (left > 0 ? fmtTTL(left) : "expiring") : (e.id === "d-ttl" ? "none" : "");
    }
    let flashing = false;
    for (const [k, t] of flashes) {
      if (Date.now() - t >= FLASH_MS) flashes.delete(k); else flashing = true;
    }
    for (const e of document.querySelectorAll(".flash")) {
      const k = e.getAttribute("data-key");
      if (!flashOn(k)) e.classList.remove("flash");
    }
    void flashing;
  }, 250);

  /* ---------------------------------------------------------------- the watch */
  let watchIndex = 0; // next index wanted
  let watchAbort = null;
  function setLive(state, text) {
    const l = $("live");
    l.className = "live " + state;
    l.textContent = text;
  }
  async function watch() {
    for (let backoff = 500; ;) {
      const ctl = new AbortController();
      watchAbort = ctl;
      try {
        const q = { wait: "true", recursive: "true", stream: "true" };
        if (watchIndex) q.waitIndex = String(watchIndex);
        const res = await fetch(keyURL(scope, q), { signal: ctl.signal, cache: "no-store", headers: withAuth() });
        if (!res.ok) {
          let body = {};
          try { body = await res.json(); } catch (e) { /* not JSON */ }
          if (needsSignIn(res.status, body)) {
            if (auth) { pollInstead(); return; }
            openSignIn(true);
          }
          if (body.errorCode === 401) { // history cleared: start over from now
            watchIndex = (body.index || 0) + 1;
            await reloadAll();
            continue;
          }
          throw new Error("watch: HTTP " + res.status);
        }
        setLive("on", "live");
        backoff = 500;
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line) onEventLine(line);
          }
        }
        throw new Error("watch stream ended");
      } catch (e) {
        setLive("off", "reconnecting");
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }
  /* A signed-in user who may read the scope's directories but not watch the scope (etcd grants
   * a recursive read only through a pattern ending in "*" that covers the directory itself,
   * e.g. /app* rather than /app and /app/*): the page reloads what it shows every few seconds. */
  let pollTimer = null, polling = false;
  function pollInstead() {
    setLive("poll", "polling");
    if (pollTimer) return;
    pollTimer = setInterval(async () => {
      if (polling || inflight) return;
      polling = true;
      try { await reloadAll(); } finally { polling = false; }
    }, POLL_MS);
  }
  function onEventLine(line) {
    let ev;
    try { ev = JSON.parse(line); } catch (e) { return; }
    if (!ev.node) return;
    const idx = ev.node.modifiedIndex || 0;
    if (idx >= watchIndex) watchIndex = idx + 1;
    eventSeq++;
    if (inflight) replayBuf.push({ seq: eventSeq, ev });
    else replayBuf.length = 0;
    if (replayBuf.length > 20000) replayBuf.splice(0, replayBuf.length - 20000);
    applyEvent(ev, false);
    events.unshift({ action: ev.action, key: ev.node.key, index: idx, t: Date.now() });
    if (events.length > 200) events.length = 200;
    if (ev.node.key === ui.selected && ui.editing) ui.editing.remoteChanged = true;
    render();
  }
  async function reloadAll() {
    const loaded = Array.from(nodes.values()).filter((n) => n.dir && n.children && !n.above).map((n) => n.key);
    for (const k of loaded.sort()) {
      try { await loadDir(k); } catch (e) { if (e.code === 100) removeNode(k); }
    }
    if (!nodes.get(ui.dir)) ui.dir = "/";
    render();
  }

  /* The last events of the store's history, one short wait each (works on any v2 server). */
  async function loadHistory(upTo) {
    const want = 20;
    let from = Math.max(1, upTo - want + 1);
    const got = [];
    while (from <= upTo && got.length < want) {
      let r;
      try {
        r = await api("GET", scope, { wait: "true", recursive: "true", waitIndex: String(from) }, null, true);
      } catch (e) {
        if (e.code === 401) { from = upTo - 5; if (from < 1) break; continue; }
        break;
      }
      const ev = r.body;
      const idx = ev.node.modifiedIndex;
      if (idx > upTo) break;
      got.push({ action: ev.action, key: ev.node.key, index: idx, t: 0, history: true });
      from = idx + 1;
    }
    got.reverse();
    for (const g of got) if (!events.some((e) => e.index === g.index)) events.push(g);
    events.sort((a, b) => b.index - a.index);
    render();
  }

  /* ---------------------------------------------------------------- operations */
  function currentSelectedNode() { return ui.selected ? nodes.get(ui.selected) : null; }

  function startEdit(key) {
    const node = nodes.get(key);
    if (!node || node.dir) return;
    ui.editing = { key, baseIndex: node.modifiedIndex, baseValue: node.value, draft: node.value };
    renderNow();
    const ta = $("edit-value");
    if (ta) { ta.focus(); ta.setSelectionRange(ta.value.length, ta.value.length); }
  }
  function cancelEdit() {
    ui.editing = null;
    renderNow();
    focusTable();
  }
  async function saveEdit(force) {
    const ed = ui.editing;
    if (!ed) return;
    const ta = $("edit-value");
    if (ta) ed.draft = ta.value;
    const node = nodes.get(ed.key);
    const form = { value: ed.draft };
    if (node && node.ttl) form.ttl = String(Math.max(1, ttlLeft(node))); // a plain edit keeps the TTL
    const query = { prevIndex: String(force && force.index ? force.index : ed.baseIndex) };
    try {
      const r = await api("PUT", ed.key, query, form);
      applyEvent(r.body, true);
      ui.editing = null;
      toast("Saved " + ed.key, "good");
      renderNow();
      focusTable();
    } catch (e) {
      if (e.code === 101 || e.code === 100) return conflict(ed, e);
      toast("Save failed: " + e.message, "bad");
    }
  }
  /* Someone changed (or deleted) the key since the edit began: show both values. */
  async function conflict(ed, err) {
    let theirs = null;
    try { theirs = (await api("GET", ed.key)).body.node; } catch (e) { theirs = null; }
    $("conflict-title").textContent = theirs ? "Changed meanwhile" : "Deleted meanwhile";
    $("conflict-text").textContent = theirs
      ? `Someone changed ${ed.key} after you began editing (you started from index ${ed.baseIndex}, it is now at ${theirs.modifiedIndex}). Nothing was overwritten.`
      : `Someone deleted ${ed.key} after you began editing. Nothing was written.`;
    $("conflict-theirs").textContent = theirs ? theirs.value : "(deleted)";
    $("conflict-their-idx").textContent = theirs ? "index " + theirs.modifiedIndex : "";
    $("conflict-mine").textContent = ed.draft;
    void err;
    const dlg = $("dlg-conflict");
    dlg.returnValue = "";
    dlg.showModal();
    const choice = await new Promise((res) => dlg.addEventListener("close", () => res(dlg.returnValue), { once: true }));
    if (choice === "mine") {
      if (theirs) return saveEdit({ index: theirs.modifiedIndex });
      try {
        await api("PUT", ed.key, { prevExist: "false" }, { value: ed.draft });
        ui.editing = null;
        toast("Saved " + ed.key, "good");
      } catch (e) { toast("Save failed: " + e.message, "bad"); }
      renderNow();
    } else if (choice === "theirs") {
      ui.editing = null;
      if (theirs) applyEvent({ action: "set", node: theirs }, true);
      renderNow();
    } else if (choice === "edit") {
      renderNow(); // baseIndex stays: the next save asks again until the person decides
      const ta = $("edit-value");
      if (ta) ta.focus();
    } else renderNow();
  }

  async function setTTL(key, val) {
    const s = parseInt(val, 10);
    if (!(s > 0)) { toast("TTL must be a positive number of seconds", "bad"); return; }
    const node = nodes.get(key);
    try {
      // refresh=true changes the TTL and leaves the value (and watchers) alone.
      const form = { ttl: String(s), refresh: "true", prevExist: "true" };
      if (node && node.dir) form.dir = "true";
      const r = await api("PUT", key, null, form);
      const input = $("ttl-input");
      if (input) input.value = "";
      applyEvent({ action: "update", node: r.body.node }, true);
      const n = nodes.get(key);
      if (n) fill(n, r.body.node);
      toast(`TTL of ${key} set to ${s}s`, "good");
      renderNow();
    } catch (e) { toast("TTL failed: " + e.message, "bad"); }
  }
  async function clearTTL(key) {
    const node = nodes.get(key);
    if (!node) return;
    const form = node.dir ? { dir: "true", ttl: "", prevExist: "true" } : { value: node.value, ttl: "", prevExist: "true" };
    const query = node.dir ? null : { prevIndex: String(node.modifiedIndex) };
    try {
      const r = await api("PUT", key, query, form);
      const n = nodes.get(key);
      if (n) fill(n, r.body.node);
      toast(`TTL of ${key} cleared`, "good");
      renderNow();
    } catch (e) { toast("Clear TTL failed: " + e.message + (e.code === 101 ? " (the key changed meanwhile)" : ""), "bad"); }
  }

  async function deleteKey(key) {
    const node = nodes.get(key);
    if (!node) return;
    if (node.dir) return deleteDir(key);
    try {
      await api("DELETE", key, { prevIndex: String(node.modifiedIndex) });
      removeNode(key);
      if (ui.selected === key) ui.selected = null;
      toast("Deleted " + key, "good");
      renderNow();
      focusTable();
    } catch (e) {
      toast("Delete failed: " + e.message + (e.code === 101 ? " (the key changed meanwhile)" : ""), "bad");
    }
  }
  function confirmDialog(title, text, okText) {
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = okText;
    const dlg = $("dlg-confirm");
    dlg.returnValue = "";
    dlg.showModal();
    return new Promise((res) => dlg.addEventListener("close", () => res(dlg.returnValue === "ok"), { once: true }));
  }
  async function deleteDir(key) {
    if (!key || key === "/") return;
    const node = nodes.get(key);
    const n = node && node.children ? node.children.size : null;
    const ok = await confirmDialog("Delete directory?",
      `Delete ${key} and everything below it` + (n !== null ? ` (${n} entries directly inside)` : "") + "? This cannot be undone.",
      "Delete directory");
    if (!ok) return;
    const inside = ui.dir === key || ui.dir.startsWith(key + "/");
    try {
      await api("DELETE", key, { dir: "true", recursive: "true" });
      removeNode(key);
      toast("Deleted " + key, "good");
      if (inside) await navigate(parentOf(key), { keepHash: true });
      if (inside) history.replaceState(null, "", "#" + parentOf(key).split("/").map(encodeURIComponent).join("/"));
      renderNow();
    } catch (e) { toast("Delete failed: " + e.message, "bad"); }
  }

  let createMode = "key";
  function openCreate(mode) {
    createMode = mode;
    $("create-title").textContent = mode === "dir" ? "New directory" : "New key";
    $("create-value-label").hidden = mode === "dir";
    $("create-name").value = "";
    $("create-value").value = "";
    $("create-ttl").value = "";
    $("create-error").textContent = "";
    $("dlg-create").showModal();
    $("create-name").focus();
  }
  $("create-form").addEventListener("submit", async (e) => {
    if (e.submitter && e.submitter.value !== "ok") return;
    e.preventDefault();
    const name = $("create-name").value.trim();
    if (!name) return;
    const key = normPath(name.startsWith("/") ? name : join(ui.dir, name));
    const form = createMode === "dir" ? { dir: "true" } : { value: $("create-value").value };
    const ttl = $("create-ttl").value.trim();
    if (ttl) form.ttl = ttl;
    try {
      const r = await api("PUT", key, { prevExist: "false" }, form);
      applyEvent(r.body, true);
      $("dlg-create").close();
      toast("Created " + key, "good");
      await navigate(key);
    } catch (err) {
      $("create-error").textContent = err.code === 105 ? key + " already exists." : err.message;
    }
  });

  /* ---- copy, export and import (quorumctl's export format) */
  async function readTree(key) {
    const r = await api("GET", key, { recursive: "true", sorted: "true" });
    const entries = [];
    const base = r.body.node.key || "/";
    const walk = (n) => {
      const rel = n.key === base || !n.key ? "" : n.key.slice(base === "/" ? 1 : base.length + 1);
      const e = { path: rel };
      if (n.dir) e.dir = true; else e.value = n.value === undefined ? "" : n.value;
      if (n.ttl > 0) e.ttl = n.ttl;
      entries.push(e);
      for (const c of n.nodes || []) walk(c);
    };
    walk(r.body.node);
    if (base === "/" && entries.length) entries[0].dir = true;
    return { prefix: base, entries };
  }
  /* Writes entries below prefix; parents come before children. */
  async function writeEntries(prefix, entries, noOverwrite) {
    let keys = 0, dirs = 0;
    for (const e of entries) {
      if (typeof e.path !== "string" || (!e.dir && typeof e.value !== "string") ||
          (e.ttl !== undefined && !Number.isInteger(e.ttl))) throw new Error("not a quorumctl export entry: " + JSON.stringify(e));
    }
    for (const e of entries) {
      const key = normPath(e.path ? join(prefix, e.path) : prefix);
      if (key === "/" && e.dir) continue;
      const form = e.dir ? { dir: "true" } : { value: e.value };
      if (e.ttl > 0) form.ttl = String(e.ttl);
      try {
        await api("PUT", key, noOverwrite && !e.dir ? { prevExist: "false" } : null, form);
      } catch (err) {
        if (e.dir && (err.code === 102 || err.code === 105)) continue; // already a directory
        throw new Error(key + ": " + err.message);
      }
      if (e.dir) dirs++; else keys++;
    }
    return { keys, dirs };
  }

  let copyFrom = null;
  function openCopy(key) {
    copyFrom = key;
    $("copy-from").textContent = key;
    $("copy-to").value = key + "-copy";
    $("copy-error").textContent = "";
    $("dlg-copy").showModal();
    $("copy-to").focus();
    $("copy-to").select();
  }
  $("copy-form").addEventListener("submit", async (e) => {
    if (e.submitter && e.submitter.value !== "ok") return;
    e.preventDefault();
    const to = normPath($("copy-to").value.trim());
    if (to === "/" || to === copyFrom || to.startsWith(copyFrom + "/")) {
      $("copy-error").textContent = "Choose a path outside " + copyFrom + ".";
      return;
    }
    try {
      const exists = await api("GET", to).then(() => true, (err) => { if (err.code === 100) return false; throw err; });
      if (exists) { $("copy-error").textContent = to + " already exists."; return; }
      const t = await readTree(copyFrom);
      const r = await writeEntries(to, t.entries, true);
      $("dlg-copy").close();
      toast(`Copied ${copyFrom} to ${to} (${r.keys} keys, ${r.dirs} dirs)`, "good");
      await navigate(to, { reload: true });
    } catch (err) { $("copy-error").textContent = err.message; }
  });

  async function exportDir() {
    try {
      const t = await readTree(ui.dir);
      const lines = t.entries.map((e) => JSON.stringify(e));
      const text = `{"quorumctl_export":1,"prefix":${JSON.stringify(t.prefix)},"entries":[\n` + lines.join(",\n") + "\n]}\n";
      const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "application/json" })),
                          download: (ui.dir === "/" ? "root" : baseName(ui.dir)) + ".json" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      toast(`Exported ${t.entries.length} entries of ${ui.dir}`, "good");
    } catch (e) { toast("Export failed: " + e.message, "bad"); }
  }
  function openImport() {
    $("import-to").value = ui.dir;
    $("import-file").value = "";
    $("import-error").textContent = "";
    $("dlg-import").showModal();
  }
  $("import-form").addEventListener("submit", async (e) => {
    if (e.submitter && e.submitter.value !== "ok") return;
    e.preventDefault();
    const f = $("import-file").files[0];
    if (!f) { $("import-error").textContent = "Choose a file."; return; }
    const to = normPath($("import-to").value.trim() || "/");
    try {
      let doc;
      try { doc = JSON.parse(await f.text()); } catch (err) { throw new Error("the file is not JSON"); }
      if (!doc || !Array.isArray(doc.entries)) throw new Error("the file is not a quorumctl export");
      const r = await writeEntries(to, doc.entries, false);
      $("dlg-import").close();
      toast(`Imported ${r.keys} keys and ${r.dirs} directories into ${to}`, "good");
      await navigate(to, { reload: true });
    } catch (err) { $("import-error").textContent = err.message; }
  });

  async function pushQueue(value) {
    try {
      const r = await api("POST", ui.dir, null, { value });
      applyEvent(r.body, true);
      flashes.set(r.body.node.key, Date.now());
      $("queue-value").value = "";
      toast("Pushed " + r.body.node.key, "good");
      render();
    } catch (e) { toast("Push failed: " + e.message, "bad"); }
  }

  /* ---------------------------------------------------------------- cluster */
  let clusterLoads = 0; // loads overlap (Refresh, the timer); only the newest one is shown
  async function loadCluster() {
    const load = ++clusterLoads;
    const body = $("cluster-body");
    const get = (p) => getJSON(p).then((v) => ({ ok: true, v }), (e) => ({ ok: false, e }));
    const [ver, mem, self, store, leader] = await Promise.all(
      ["/version", "/v2/members", "/v2/stats/self", "/v2/stats/store", "/v2/stats/leader"].map(get));
    const sec = (title, id, ...kids) => el("section", { class: "cs", id }, el("h3", { text: title }), ...kids);
    const kv = (obj) => {
      const dl = el("dl", { class: "kv" });
      const walk = (o, pre) => {
        for (const [k, v] of Object.entries(o)) {
          if (v && typeof v === "object" && !Array.isArray(v)) walk(v, pre + k + ".");
          else dl.append(el("dt", { text: pre + k }), el("dd", { "data-stat": pre + k, text: String(v) }));
        }
      };
      walk(obj, "");
      return dl;
    };
    const missing = (r) => el("p", { class: "muted", text: "Not available here" + (r.e && r.e.status ? ` (HTTP ${r.e.status})` : "") + "." });
    let leaderId = self.ok && self.v.leaderInfo ? self.v.leaderInfo.leader : (leader.ok ? leader.v.leader : null);
    let leaderStats = leader;
    const members = mem.ok ? mem.v.members || [] : [];
    if (!leader.ok && leaderId) { // a follower answers 403: ask the leader itself
      const lm = members.find((m) => m.id === leaderId);
      if (lm && lm.clientURLs && lm.clientURLs[0]) {
        leaderStats = await fetch(lm.clientURLs[0].replace(/\/+$/, "") + "/v2/stats/leader", { headers: withAuth() })
          .then((r) => r.ok ? r.json().then((v) => ({ ok: true, v })) : { ok: false, e: { status: r.status } }, (e) => ({ ok: false, e }));
      }
    }
    const memTable = el("table", { class: "members" },
      el("thead", null, el("tr", null, ...["", "name", "id", "peer URLs", "client URLs"].map((h) => el("th", { text: h })))),
      el("tbody", null, ...members.map((m) => el("tr", { "data-member": m.id, class: m.id === leaderId ? "leader" : "" },
        el("td", { text: m.id === leaderId ? "★ leader" : "" }),
        el("td", { class: "m-name", text: m.name || "(unstarted)" }),
        el("td", { class: "m-id", text: m.id }),
        el("td", { class: "m-peer", text: (m.peerURLs || []).join(" ") }),
        el("td", { class: "m-client", text: (m.clientURLs || []).join(" ") })))));
    const followers = leaderStats.ok ? Object.entries(leaderStats.v.followers || {}) : [];
    const fTable = leaderStats.ok
      ? (followers.length
        ? el("table", { class: "followers" },
          el("thead", null, el("tr", null, ...["follower", "latency now (ms)", "average", "min", "max", "ok", "fail"].map((h) => el("th", { text: h })))),
          el("tbody", null, ...followers.map(([id, f]) => {
            const l = f.latency || {}, c = f.counts || {};
            const m = members.find((x) => x.id === id);
            const num = (x) => (typeof x === "number" ? x.toFixed(3) : "");
            return el("tr", { "data-follower": id }, el("td", { text: (m && m.name ? m.name + " " : "") + id }),
              el("td", { text: num(l.current) }), el("td", { text: num(l.average) }), el("td", { text: num(l.minimum) }),
              el("td", { text: num(l.maximum) }), el("td", { text: String(c.success ?? "") }), el("td", { text: String(c.fail ?? "") }));
          })))
        : el("p", { class: "muted", id: "no-followers", text: "The leader has no followers (a one-member cluster)." }))
      : missing(leaderStats);
    if (load !== clusterLoads) return; // a newer load started meanwhile: its answers are newer
    body.replaceChildren(
      sec("Version", "c-version", ver.ok ? kv(ver.v) : missing(ver)),
      sec("Members", "c-members", mem.ok ? memTable : missing(mem),
          el("p", null, "Leader: ", el("code", { id: "c-leader", text: leaderId || "unknown" }))),
      sec("This member (/v2/stats/self)", "c-self", self.ok ? kv(self.v) : missing(self)),
      sec("Store (/v2/stats/store)", "c-store", store.ok ? kv(store.v) : missing(store)),
      sec("Follower latencies (/v2/stats/leader)", "c-leader-stats", fTable));
  }
  let clusterTimer = null;
  function openCluster() {
    const dlg = $("dlg-cluster");
    dlg.showModal();
    $("cluster-body").replaceChildren(el("p", { class: "muted", text: "Loading…" }));
    loadCluster();
    clearInterval(clusterTimer);
    clusterTimer = setInterval(() => { if (dlg.open) loadCluster(); else clearInterval(clusterTimer); }, 5000);
  }

  /* ---------------------------------------------------------------- events and keys */
  function focusTable() { $("rows").focus({ preventScroll: true }); }

  $("rows").addEventListener("scroll", () => renderRows());
  window.addEventListener("resize", () => render());
  $("rows").addEventListener("click", (e) => {
    const row = e.target.closest(".row");
    if (!row) return;
    const rows = dirRows();
    ui.cursor = rows.findIndex((r) => r.key === row.dataset.key);
    openRow(row.dataset.key);
  });
  function openRow(key) {
    const n = nodes.get(key);
    if (!n) return;
    if (n.dir) navigate(key);
    else {
      if (ui.editing && ui.editing.key !== key) ui.editing = null;
      ui.selected = key;
      setHash(key);
      renderNow();
      // On a phone the key's panel is below the list: bring it into view.
      if (window.matchMedia("(max-width: 760px)").matches) $("detail").scrollIntoView({ block: "start" });
    }
  }
  $("rows").addEventListener("keydown", (e) => {
    const rows = dirRows();
    const page = Math.max(1, Math.floor($("rows").clientHeight / ROW_H) - 1);
    let c = ui.cursor;
    switch (e.key) {
      case "ArrowDown": c++; break;
      case "ArrowUp": c--; break;
      case "PageDown": c += page; break;
      case "PageUp": c -= page; break;
      case "Home": c = 0; break;
      case "End": c = rows.length - 1; break;
      case "Enter": case "ArrowRight": if (rows[c]) openRow(rows[c].key); e.preventDefault(); return;
      case "Backspace": case "ArrowLeft": if (ui.dir !== "/") navigate(parentOf(ui.dir)); e.preventDefault(); return;
      case "Delete": if (rows[c]) { const n = rows[c]; n.dir ? deleteDir(n.key) : deleteKey(n.key); } e.preventDefault(); return;
      default: return;
    }
    e.preventDefault();
    ui.cursor = Math.max(0, Math.min(rows.length - 1, c));
    scrollRowIntoView(ui.cursor);
    renderRows(rows);
  });

  $("tree").addEventListener("click", (e) => {
    const li = e.target.closest("[role=treeitem]");
    if (!li) return;
    const key = li.dataset.key;
    if (e.target.dataset.toggle !== undefined && ui.expanded.has(key) && nodes.get(key) && nodes.get(key).children) {
      ui.expanded.delete(key);
      ui.treeFocus = key;
      render();
      return;
    }
    if (e.target.dataset.toggle !== undefined) { toggleTree(key, true); return; }
    navigate(key);
    closeNarrowTree();
  });
  async function toggleTree(key, open) {
    ui.treeFocus = key;
    if (open) {
      ui.expanded.add(key);
      const n = nodes.get(key);
      if (n && !n.children) { try { await loadDir(key); } catch (e) { toast("Error: " + e.message, "bad"); } }
    } else ui.expanded.delete(key);
    renderNow();
    focusTreeItem(key);
  }
  function visibleTreeKeys() { return Array.from($("tree").querySelectorAll("[role=treeitem]")).map((li) => li.dataset.key); }
  function focusTreeItem(key) {
    ui.treeFocus = key;
    for (const li of $("tree").querySelectorAll("[role=treeitem]")) li.tabIndex = li.dataset.key === key ? 0 : -1;
    const li = $("tree").querySelector(`[role=treeitem][data-key="${CSS.escape(key)}"]`);
    if (li) li.focus();
  }
  $("tree").addEventListener("keydown", (e) => {
    const li = e.target.closest("[role=treeitem]");
    if (!li) return;
    const key = li.dataset.key, list = visibleTreeKeys(), i = list.indexOf(key);
    const n = nodes.get(key);
    switch (e.key) {
      case "ArrowDown": if (i + 1 < list.length) focusTreeItem(list[i + 1]); break;
      case "ArrowUp": if (i > 0) focusTreeItem(list[i - 1]); break;
      case "ArrowRight":
        if (!ui.expanded.has(key) || !n.children) toggleTree(key, true);
        else if (i + 1 < list.length && parentOf(list[i + 1]) === key) focusTreeItem(list[i + 1]);
        break;
      case "ArrowLeft":
        if (ui.expanded.has(key) && n.children && key !== "/") toggleTree(key, false);
        else if (key !== "/") focusTreeItem(parentOf(key));
        break;
      case "Home": focusTreeItem(list[0]); break;
      case "End": focusTreeItem(list[list.length - 1]); break;
      case "Enter": case " ": navigate(key).then(() => { closeNarrowTree(); focusTable(); }); break;
      default: return;
    }
    e.preventDefault();
  });

  $("find").addEventListener("input", () => { ui.filter = $("find").value.trim().toLowerCase(); ui.cursor = 0; render(); });
  $("find").addEventListener("keydown", (e) => {
    if (e.key === "Escape") { $("find").value = ""; ui.filter = ""; render(); focusTable(); }
    if (e.key === "Enter") { e.preventDefault(); focusTable(); }
  });
  $("jump-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = $("jump").value.trim();
    if (!v) return;
    if (await navigate(v.startsWith("/") ? v : join(ui.dir, v))) { $("jump").value = ""; focusTable(); }
  });
  $("endpoint").value = ENDPOINT;
  $("endpoint-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = $("endpoint").value.trim().replace(/\/+$/, "");
    const p = new URLSearchParams(location.search);
    if (!v || v === location.origin) p.delete("endpoint"); else p.set("endpoint", v);
    const qs = p.toString();
    location.href = location.pathname + (qs ? "?" + qs : "") + location.hash;
  });
  document.addEventListener("click", (e) => {
    const b = e.target.closest("[data-close]");
    if (b) b.closest("dialog").close("cancel");
  });
  $("new-key").addEventListener("click", () => openCreate("key"));
  $("new-dir").addEventListener("click", () => openCreate("dir"));
  $("copy-dir").addEventListener("click", () => { if (ui.dir !== "/") openCopy(ui.dir); });
  $("export-dir").addEventListener("click", exportDir);
  $("import-dir").addEventListener("click", openImport);
  $("delete-dir").addEventListener("click", () => deleteDir(ui.dir));
  $("refresh-dir").addEventListener("click", () => navigate(ui.selected || ui.dir, { reload: true }));
  $("queue-bar").addEventListener("submit", (e) => { e.preventDefault(); pushQueue($("queue-value").value); });
  $("cluster-open").addEventListener("click", openCluster);
  /* Sign in: the credentials go with every request from now on (the page starts again). */
  /* nowhere: "/" and every directory on the way to the opened path were refused. */
  function openSignIn(refused, nowhere) {
    const dlg = $("dlg-login");
    if (dlg.open) return;
    $("login-user").value = authUser();
    $("login-password").value = "";
    $("login-error").textContent = !refused ? "" : !auth ? "This server asks who you are." :
      "Access refused for " + authUser() + "." +
      (nowhere ? " Open the page at a directory " + authUser() + " may read (…/ui/#/dir)." : "");
    dlg.showModal();
  }
  function setAuth(value) {
    if (value) sessionStorage.setItem(AUTH_KEY, value); else sessionStorage.removeItem(AUTH_KEY);
    location.reload();
  }
  $("login-open").textContent = auth ? authUser() : "Sign in";
  $("login-open").addEventListener("click", () => openSignIn(false));
  $("login-form").addEventListener("submit", (e) => {
    if (e.submitter && e.submitter.value !== "ok") return;
    const bytes = new TextEncoder().encode($("login-user").value + ":" + $("login-password").value);
    setAuth("Basic " + btoa(String.fromCharCode(...bytes)));
  });
  $("login-out").addEventListener("click", () => setAuth(""));
  $("cluster-refresh").addEventListener("click", loadCluster);
  $("dlg-cluster").addEventListener("close", () => clearInterval(clusterTimer));
  function closeNarrowTree() { document.body.classList.remove("tree-open"); $("tree-toggle").setAttribute("aria-expanded", "false"); }
  $("tree-toggle").addEventListener("click", () => {
    const open = document.body.classList.toggle("tree-open");
    $("tree-toggle").setAttribute("aria-expanded", String(open));
    if (open) focusTreeItem(ui.treeFocus);
  });

  /* Single-key shortcuts, when no field has the focus. */
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    if (document.querySelector("dialog[open]")) return;
    const sel = currentSelectedNode();
    switch (e.key) {
      case "/": $("find").focus(); break;
      case "g": $("jump").focus(); break;
      case "n": openCreate("key"); break;
      case "N": openCreate("dir"); break;
      case "e": if (sel && !sel.dir) startEdit(sel.key); else return; break;
      case "c": openCluster(); break;
      case "r": navigate(ui.selected || ui.dir, { reload: true }); break;
      case "t": focusTreeItem(ui.treeFocus); break;
      case "Escape": if (ui.editing) cancelEdit(); else return; break;
      default: return;
    }
    e.preventDefault();
  });
  window.addEventListener("popstate", () => navigate(hashKey(), { keepHash: true, fromHash: true }));

  /* ---------------------------------------------------------------- start */
  /* Loads "/" or, when a signed-in user may not read it, the scope on the way to target;
   * throws the refusal of "/" when there is none. */
  async function loadScope(target) {
    try {
      return await loadDir("/", !!auth);
    } catch (e) {
      if (!auth || !(e instanceof ApiError) || !needsSignIn(e.status, e.body)) throw e;
      const parts = target.split("/").filter(Boolean);
      for (let i = 1; i <= parts.length; i++) {
        const key = "/" + parts.slice(0, i).join("/");
        let r;
        try { r = await loadDir(key, true); } catch (e2) {
          if (e2 instanceof ApiError && needsSignIn(e2.status, e2.body)) continue;
          if (e2 instanceof ApiError && e2.code === 100) break;
          throw e2;
        }
        if (!nodes.get(key).dir) break;
        scope = key;
        for (let a = parentOf(key), child = nodes.get(key); a; child = nodes.get(a), a = parentOf(a)) {
          let n = nodes.get(a);
          if (!n || !n.above) { n = makeNode(a, { dir: true }); n.above = true; n.children = new Map(); nodes.set(a, n); }
          setChild(n, child);
        }
        return r;
      }
      openSignIn(true, true);
      throw e;
    }
  }

  async function start() {
    scope = "/";
    nodes.clear();
    nodes.set("/", makeNode("/", { dir: true }));
    let idx = null;
    try {
      const r = await loadScope(hashKey());
      idx = r.index;
      if (idx === null) idx = await currentIndex();
    } catch (e) {
      if (e instanceof ApiError && needsSignIn(e.status, e.body)) { // (the sign-in is open)
        setLive("off", "signed out");
        $("dlg-login").addEventListener("close", () => { if (!nodes.get(scope).children) start(); }, { once: true });
        return;
      }
      setLive("off", "unreachable");
      toast("Cannot reach " + ENDPOINT + ": " + e.message, "bad");
      setTimeout(start, 3000);
      return;
    }
    watchIndex = idx + 1;
    watch();
    await navigate(hashKey(), { keepHash: true, fromHash: true });
    focusTable();
    loadHistory(idx);
  }
  window.quorumUI = { nodes, ui, endpoint: ENDPOINT, rowHeight: ROW_H }; // for tests and the console
  start();
})();
