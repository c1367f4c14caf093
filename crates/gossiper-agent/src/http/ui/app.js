// The cluster view: a client of this agent's API, nothing more. It polls /v1/members and
// /metrics, follows /v1/events, and reads and writes keys through /v1/kv. Every text that
// comes from the cluster (names, addresses, keys, values) is put in the page with textContent,
// never parsed as markup; the server's Content-Security-Policy forbids inline script anyway.
//
// A memberlist agent (`--protocol memberlist`) serves the same page; its API has no /v1/info
// or keys, its /metrics are memberlist's own (no byte counters: no traffic chart), and its
// /v1/events are Serf user events by long poll. There the page shows
// the members (Serf's statuses), membership changes seen between polls, and the user events.
"use strict";

const PAGE_SIZE = 50;          // member rows drawn at once (the table is paged)
const VALUE_SHOWN = 120;       // characters of a value shown in the key table
const EVENTS_KEPT = 300;       // events listed in the timeline
const WINDOW_MS = 5 * 60e3;    // what the traffic chart and the event strip cover
const STATUS_ORDER = { dead: 0, failed: 0, suspect: 1, leaving: 2, left: 2, alive: 3 };
/** The badge style of each status word: Serf's `failed` looks like dead, `leaving` like left. */
const STATUS_STYLE = {
  alive: "alive", suspect: "suspect", dead: "dead", left: "left", failed: "dead",
  leaving: "left", removed: "removed", up: "alive", down: "dead", key: "key", lagged: "lagged",
  user: "key", stream: "info",
};

const view = {
  memberlist: false,           // a memberlist agent: members and user events only
  info: null,
  members: [],
  heard: new Map(),            // name -> {heartbeat, at}: when this page saw it advance
  selected: null,              // the node whose keys are shown
  filter: "",
  sort: { key: "status", dir: 1 },
  page: 0,
  events: [],                  // {at, kind, text}
  traffic: [],                 // {at, inRate, outRate}
  lastCounters: null,
  membersBusy: false,
  refreshSoon: null,
};

const $ = (id) => document.getElementById(id);

/** An element with text (never markup) and attributes. */
function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

/** A status word as a badge: glyph (CSS) + word, coloured by class. */
function statusBadge(status) {
  const style = Object.hasOwn(STATUS_STYLE, status) ? STATUS_STYLE[status] : "unknown";
  return el("span", status, { class: "status status-" + style });
}

/** A long text cut to `max` characters, saying how much was left out. */
function truncate(text, max) {
  if (text.length <= max) return text;
  return text.slice(0, max) + "… (" + text.length + " chars)";
}

function fmtRate(bytesPerS) {
  if (!isFinite(bytesPerS)) return "–";
  const units = ["B/s", "KiB/s", "MiB/s", "GiB/s"];
  let v = bytesPerS, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return (u === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[u];
}

function fmtAgo(ms) {
  if (ms === null) return "–";
  const s = ms / 1000;
  if (s < 1) return "now";
  if (s < 90) return s.toFixed(0) + " s ago";
  if (s < 5400) return (s / 60).toFixed(0) + " min ago";
  return (s / 3600).toFixed(1) + " h ago";
}

function setLink(state, text) {
  const link = $("link");
  link.dataset.state = state;
  link.textContent = text;
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error(body.error || (r.status + " " + r.statusText));
    e.status = r.status;
    throw e;
  }
  return body;
}

// ---- agent facts -------------------------------------------------------------------------

/** A memberlist agent: no /v1/info; its health reply names it. */
function loadMemberlistInfo(health) {
  view.memberlist = true;
  view.info = { name: health.name };
  $("agent-name").textContent = health.name;
  document.title = "gossiper · " + health.name;
  const facts = $("facts");
  const d = el("div");
  d.append(el("dt", "protocol"), el("dd", "memberlist (Serf-compatible)"));
  facts.replaceChildren(d);
  for (const id of ["keys", "traffic"]) $(id).hidden = true;
  $("members-note").textContent = "Members as this memberlist agent lists them. Events: "
    + "membership changes seen between polls, and Serf user events.";
}

async function loadInfo() {
  // Both agents answer /v1/health; a memberlist agent says so there.
  const health = await getJson("/v1/health");
  if (health.protocol === "memberlist") return loadMemberlistInfo(health);
  const info = await getJson("/v1/info");
  view.info = info;
  if (view.selected === null) view.selected = info.name;
  $("agent-name").textContent = info.name;
  document.title = "gossiper · " + info.name;
  const facts = $("facts");
  facts.replaceChildren();
  const pairs = [
    ["cluster", info.cluster], ["version", info.version], ["generation", info.generation],
    ["protocol", info.protocol], ["detector", info.detector],
    ["gossip", info.gossip_addr], ["encrypted", info.encrypted ? "yes" : "no"],
  ];
  for (const [k, v] of pairs) {
    const d = el("div");
    d.append(el("dt", k), el("dd", v === undefined ? "–" : v));
    facts.append(d);
  }
  $("token-label").hidden = !(info.api && info.api.token_required_for_writes);
  $("write-node").textContent = info.name;
}

// ---- members -----------------------------------------------------------------------------

async function loadMembers() {
  if (view.membersBusy) return;
  view.membersBusy = true;
  try {
    const members = await getJson("/v1/members");
    const now = Date.now();
    for (const m of members) {
      const h = view.heard.get(m.name);
      if (!h || h.heartbeat !== m.heartbeat) view.heard.set(m.name, { heartbeat: m.heartbeat, at: now });
    }
    const names = new Set(members.map((m) => m.name));
    for (const name of view.heard.keys()) if (!names.has(name)) view.heard.delete(name);
    if (view.memberlist) noteChanges(view.members, members);
    view.members = members;
    drawMembers();
    if ($("link").dataset.state === "down") setLink("live", "live");
  } catch (e) {
    setLink("down", "cannot reach the agent: " + e.message);
  } finally {
    view.membersBusy = false;
  }
}

/** Memberlist mode: membership changes between two polls, as timeline events. */
function noteChanges(before, after) {
  if (view.polled === undefined) {
    view.polled = true;
    return;
  }
  const old = new Map(before.map((m) => [m.name, m.status]));
  for (const m of after) {
    const was = old.get(m.name);
    if (was === undefined) addEvent(m.status, m.name + " joined (" + m.status + ")");
    else if (was !== m.status) addEvent(m.status, m.name + " is " + m.status + " (was " + was + ")");
    old.delete(m.name);
  }
  for (const name of old.keys()) addEvent("removed", name + " is removed");
}

function heardAgo(m) {
  const h = view.heard.get(m.name);
  return h ? Date.now() - h.at : null;
}

function sortValue(m, key) {
  switch (key) {
    case "status": return [STATUS_ORDER[m.status] ?? 9, m.name];
    case "heard": return [heardAgo(m) ?? Infinity, m.name];
    case "addr": return [m.addr || "", m.name];
    case "name": return [m.name, ""];
    default: return [m[key] ?? 0, m.name];
  }
}

function compare(a, b) {
  for (let i = 0; i < a.length; i++) {
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

function visibleMembers() {
  const words = view.filter.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = view.members.filter((m) => {
    const hay = (m.name + " " + (m.addr || "") + " " + m.status).toLowerCase();
    return words.every((w) => hay.includes(w));
  });
  const { key, dir } = view.sort;
  shown.sort((a, b) => dir * compare(sortValue(a, key), sortValue(b, key)));
  return shown;
}

function drawCounts() {
  const counts = view.memberlist
    ? { alive: 0, leaving: 0, left: 0, failed: 0 }
    : { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of view.members) counts[m.status] = (counts[m.status] || 0) + 1;
  const list = $("counts");
  list.replaceChildren();
  list.append(el("li", view.members.length + " members"));
  for (const [status, n] of Object.entries(counts)) {
    const li = el("li", null, { "data-status": status });
    li.append(el("strong", n + " "), statusBadge(status));
    list.append(li);
  }
}

function drawMembers() {
  drawCounts();
  const shown = visibleMembers();
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  view.page = Math.min(view.page, pages - 1);
  const start = view.page * PAGE_SIZE;
  const rows = $("member-rows");
  const fresh = [];
  for (const m of shown.slice(start, start + PAGE_SIZE)) {
    const tr = el("tr", null, {
      "data-name": m.name, "data-status": m.status, tabindex: "0",
      "aria-selected": String(m.name === view.selected),
    });
    const name = el("td", truncate(m.name, 64));
    name.title = m.name;
    const status = el("td");
    status.append(statusBadge(m.status));
    const heard = m.heartbeat === undefined ? "–" : fmtAgo(heardAgo(m));
    tr.append(name, el("td", m.addr || "–"), status, el("td", m.generation ?? "–"),
      el("td", m.incarnation), el("td", heard), el("td", m.phi ?? "–"));
    fresh.push(tr);
  }
  rows.replaceChildren(...fresh);
  $("page").textContent = (view.page + 1) + "/" + pages;
  $("prev").disabled = view.page === 0;
  $("next").disabled = view.page >= pages - 1;
  $("shown").textContent = shown.length === view.members.length
    ? "" : shown.length + " of " + view.members.length + " shown";
  for (const th of document.querySelectorAll("#member-table th")) {
    if (th.dataset.sort === view.sort.key) {
      th.setAttribute("aria-sort", view.sort.dir > 0 ? "ascending" : "descending");
    } else {
      th.removeAttribute("aria-sort");
    }
  }
}

function selectNode(name) {
  if (view.memberlist) return;
  view.selected = name;
  drawMembers();
  loadKeys();
}

// ---- keys --------------------------------------------------------------------------------

async function loadKeys() {
  const node = view.selected;
  if (node === null || view.memberlist) return;
  $("keys-node").textContent = node;
  const rows = $("key-rows");
  try {
    const reply = await getJson("/v1/kv/" + encodeURIComponent(node));
    if (node !== view.selected) return;
    const fresh = [];
    for (const key of Object.keys(reply.keys).sort()) {
      const entry = reply.keys[key];
      const text = entry.encoding === "base64" ? "base64: " + entry.value : entry.value;
      const value = el("td", truncate(text, VALUE_SHOWN), { class: "value" });
      value.title = truncate(text, 2000);
      const tr = el("tr", null, { "data-key": key });
      tr.append(el("td", truncate(key, 64)), value, el("td", entry.version));
      fresh.push(tr);
    }
    if (fresh.length === 0) {
      const none = el("tr");
      none.append(el("td", "no keys", { colspan: "3", class: "muted" }));
      fresh.push(none);
    }
    rows.replaceChildren(...fresh);
  } catch (e) {
    if (node !== view.selected) return;
    // 404: this agent holds no key of that node (it wrote none, or they all expired).
    const text = e.status === 404 ? "no keys" : "cannot read the keys: " + e.message;
    const tr = el("tr");
    tr.append(el("td", text, { colspan: "3", class: "muted" }));
    rows.replaceChildren(tr);
  }
}

async function write(method) {
  const key = $("w-key").value;
  const result = $("w-result");
  result.className = "small";
  if (key === "") {
    result.className = "small error";
    result.textContent = "a key is needed";
    return;
  }
  let path = "/v1/kv/" + encodeURIComponent(key);
  const ttl = $("w-ttl").value.trim();
  if (method === "PUT" && ttl !== "") path += "?ttl=" + encodeURIComponent(ttl);
  const headers = {};
  const token = $("w-token").value.trim();
  if (token !== "") headers.Authorization = "Bearer " + token;
  try {
    const r = await fetch(path, {
      method, headers, body: method === "PUT" ? $("w-value").value : undefined,
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || (r.status + " " + r.statusText));
    result.textContent = (method === "PUT" ? "set " : "deleted ") + key + ", version " + body.version;
    if (view.info) view.selected = view.info.name;
    loadKeys();
  } catch (e) {
    result.className = "small error";
    result.textContent = (method === "PUT" ? "set" : "delete") + " failed: " + e.message;
  }
}

// ---- traffic -----------------------------------------------------------------------------

/** The value of each un-labelled sample in Prometheus text. */
function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\S+)/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

async function loadMetrics() {
  try {
    const r = await fetch("/metrics", { cache: "no-store" });
    if (!r.ok) return;
    const counters = parseMetrics(await r.text());
    const now = Date.now();
    const sample = {
      at: now,
      bytesIn: counters.get("gossiper_bytes_in_total"),
      bytesOut: counters.get("gossiper_bytes_out_total"),
    };
    const last = view.lastCounters;
    view.lastCounters = sample;
    if (!last || sample.bytesIn === undefined) return;
    const dt = (now - last.at) / 1000;
    // A counter that went down is a restarted agent: no rate for that interval.
    if (dt <= 0 || sample.bytesIn < last.bytesIn || sample.bytesOut < last.bytesOut) return;
    const point = {
      at: now,
      inRate: (sample.bytesIn - last.bytesIn) / dt,
      outRate: (sample.bytesOut - last.bytesOut) / dt,
    };
    view.traffic.push(point);
    while (view.traffic.length && view.traffic[0].at < now - WINDOW_MS) view.traffic.shift();
    $("rate-in").textContent = fmtRate(point.inRate);
    $("rate-out").textContent = fmtRate(point.outRate);
    drawTraffic();
  } catch (_) {
    // The members poll reports the agent unreachable.
  }
}

function drawTraffic() {
  const now = Date.now();
  const max = Math.max(1, ...view.traffic.map((p) => Math.max(p.inRate, p.outRate)));
  // The chart spans what was measured (at least 30 s), up to the window.
  const first = view.traffic.length ? view.traffic[0].at : now;
  const span = Math.min(WINDOW_MS, Math.max(30e3, now - first));
  const points = (pick) => view.traffic
    .map((p) => {
      const x = 300 - ((now - p.at) / span) * 300;
      const y = 58 - (pick(p) / max) * 56;
      return x.toFixed(1) + "," + y.toFixed(1);
    })
    .join(" ");
  $("spark-in").setAttribute("points", points((p) => p.inRate));
  $("spark-out").setAttribute("points", points((p) => p.outRate));
}

// ---- events ------------------------------------------------------------------------------

function addEvent(kind, text) {
  const at = Date.now();
  view.events.push({ at, kind, text });
  if (view.events.length > EVENTS_KEPT) view.events.shift();
  const li = el("li", null, { "data-kind": kind });
  li.append(el("time", new Date(at).toLocaleTimeString()), statusBadge(kind), document.createTextNode(" " + text));
  const list = $("events");
  list.prepend(li);
  while (list.children.length > EVENTS_KEPT) list.lastElementChild.remove();
  // A burst of events (a storm of joins) redraws the strip once, not once per event.
  if (!view.stripSoon) {
    view.stripSoon = true;
    setTimeout(() => { view.stripSoon = false; drawStrip(); }, 200);
  }
}

function drawStrip() {
  const strip = $("event-strip");
  const now = Date.now();
  const ticks = [];
  for (const e of view.events) {
    if (e.at < now - WINDOW_MS) continue;
    const x = 600 - ((now - e.at) / WINDOW_MS) * 600;
    const style = Object.hasOwn(STATUS_STYLE, e.kind) ? STATUS_STYLE[e.kind] : "unknown";
    const row = style === "key" ? 13 : 1;
    ticks.push(svgEl("rect", { x: x.toFixed(1), y: row, width: 2, height: 10, class: "tick-" + style }));
  }
  strip.replaceChildren(...ticks);
}

/** Memberlist mode: Serf user events, by long poll from the newest index seen. */
async function followUserEvents(index) {
  try {
    const r = await fetch("/v1/events?index=" + index + "&wait=20s", { cache: "no-store" });
    if (!r.ok) throw new Error(r.status + " " + r.statusText);
    const events = await r.json();
    for (const e of events) {
      const payload = e.encoding === "base64" ? "base64: " + e.payload : e.payload;
      addEvent("user", "user event " + e.name + " = " + truncate(payload, 60) + " (clock " + e.ltime + ")");
      index = Math.max(index, e.index);
    }
    const newest = Number(r.headers.get("x-gossiper-index"));
    if (Number.isFinite(newest)) index = Math.max(index, newest);
    setTimeout(() => followUserEvents(index), 0);
  } catch (_) {
    setTimeout(() => followUserEvents(index), 3000);
  }
}

function scheduleRefresh() {
  if (view.refreshSoon !== null) return;
  view.refreshSoon = setTimeout(() => {
    view.refreshSoon = null;
    loadMembers();
  }, 150);
}

function follow() {
  const source = new EventSource("/v1/events");
  source.onopen = () => {
    setLink("live", "live");
    view.streamUp = true;
    addEvent("stream", "event stream connected");
  };
  source.addEventListener("member", (msg) => {
    const e = JSON.parse(msg.data);
    addEvent(e.event, e.name + " is " + e.event);
    scheduleRefresh();
  });
  source.addEventListener("key", (msg) => {
    const e = JSON.parse(msg.data);
    const what = e.deleted ? "deleted" : "= " + truncate(e.encoding === "base64" ? "base64: " + e.value : e.value, 60);
    addEvent("key", e.node + " " + e.key + " " + what + " (v" + e.version + ")");
    if (e.node === view.selected) loadKeys();
  });
  source.addEventListener("lagged", (msg) => {
    const e = JSON.parse(msg.data);
    addEvent("lagged", "missed " + e.missed + " events: reloading");
    loadMembers();
    loadKeys();
  });
  source.onerror = () => {
    setLink("connecting", "event stream lost, reconnecting…");
    // Once per loss: what happened meanwhile is not in the timeline.
    if (view.streamUp) addEvent("stream", "event stream lost: events until it is back are missed");
    view.streamUp = false;
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      setTimeout(follow, 3000);
    }
  };
}

// ---- wiring ------------------------------------------------------------------------------

function wire() {
  const filter = (e) => {
    if (view.filter === e.target.value) return;
    view.filter = e.target.value;
    view.page = 0;
    drawMembers();
  };
  $("filter").addEventListener("input", filter);
  $("filter").addEventListener("change", filter);
  $("prev").addEventListener("click", () => { view.page = Math.max(0, view.page - 1); drawMembers(); });
  $("next").addEventListener("click", () => { view.page += 1; drawMembers(); });
  for (const th of document.querySelectorAll("#member-table th")) {
    const sortBy = () => {
      const key = th.dataset.sort;
      view.sort = { key, dir: view.sort.key === key ? -view.sort.dir : 1 };
      drawMembers();
    };
    th.tabIndex = 0;
    th.addEventListener("click", sortBy);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(); } });
  }
  const rows = $("member-rows");
  const pick = (e) => {
    const tr = e.target.closest("tr[data-name]");
    if (tr) selectNode(tr.dataset.name);
  };
  rows.addEventListener("click", pick);
  rows.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(e); } });
  $("write").addEventListener("submit", (e) => { e.preventDefault(); write("PUT"); });
  $("w-delete").addEventListener("click", () => write("DELETE"));
}

async function start() {
  try {
    await loadInfo();
  } catch (e) {
    setLink("down", "cannot reach the agent: " + e.message);
    setTimeout(start, 3000);
    return;
  }
  loadMembers();
  setInterval(loadMembers, 1000);
  setInterval(drawStrip, 1000);
  if (view.memberlist) {
    setLink("live", "live");
    // The events so far are history, not news: start after the newest.
    fetch("/v1/events", { cache: "no-store" })
      .then((r) => Number(r.headers.get("x-gossiper-index")) || 0)
      .catch(() => 0)
      .then(followUserEvents);
    return;
  }
  loadKeys();
  loadMetrics();
  follow();
  setInterval(loadMetrics, 2000);
  setInterval(loadKeys, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  wire();
  start();
});
