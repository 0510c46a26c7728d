// The nube dashboard: one page, no framework. The node's state arrives as
// server-sent events; lists that change when someone acts come from
// /api/v0/dashboard. Text from other people (peer IDs, names,
// descriptions) is always set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let samples = [];     // traffic samples: {t, in, out}
let lastState = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  n = Number(n) || 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + u[i];
}
const rate = (n) => bytes(n) + "/s";
const short = (id) => id.length > 16 ? id.slice(0, 6) + "…" + id.slice(-6) : id;
const ms = (ns) => (ns / 1e6).toFixed(ns < 1e7 ? 2 : 0) + " ms";

function transport(addrs) {
  const a = (addrs || []).join(" ");
  if (a.includes("p2p-circuit")) return "relay";
  if (a.includes("quic")) return "QUIC";
  if (a.includes("webtransport")) return "WebTransport";
  if (a.includes("/tcp/")) return "TCP";
  return "?";
}

function fillTable(table, rows, cols, empty) {
  const body = table.tBodies[0];
  body.replaceChildren();
  if (rows.length === 0) {
    body.append(el("tr", {}, el("td", { class: "empty", colspan: cols }, empty)));
    return;
  }
  for (const r of rows) {
    // A cell cut short by its ellipsis shows the whole text on hover.
    for (const td of r.cells) if (!td.title && !td.firstElementChild && td.textContent.length > 20) td.title = td.textContent;
    body.append(r);
  }
}

// idView shows a peer or user ID shortened, the whole of it in its title,
// with a button that copies it.
function idView(id, what) {
  const v = el("span", { class: "idv", "data-id": id },
    el("span", { class: "mono", title: id }, short(id)));
  const b = el("button", { type: "button", class: "copy", "aria-label": "Copy the " + what + " " + id }, "copy");
  b.addEventListener("click", () => copyText(id, b, v.firstChild));
  v.append(b);
  return v;
}

// copyText puts text on the clipboard, through the Clipboard API or, where
// that is refused, a selected text area; failing both, it selects the ID
// on the page for Ctrl+C.
async function copyText(text, btn, shown) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch (e) {
    const ta = el("textarea", { "aria-hidden": "true", readonly: "" });
    ta.value = text;
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.append(ta);
    ta.select();
    try { ok = document.execCommand("copy"); } catch (e2) { ok = false; }
    ta.remove();
  }
  if (!ok) {
    shown.textContent = text;
    getSelection().selectAllChildren(shown);
  }
  btn.textContent = ok ? "copied" : "Ctrl+C";
  btn.classList.toggle("done", ok);
  btn.dataset.copied = ok ? "1" : "0";
  setTimeout(() => { btn.textContent = "copy"; btn.classList.remove("done"); shown.textContent = short(text); }, ok ? 2000 : 8000);
}

// idCell is a table cell holding idView(id).
const idCell = (id, what) => el("td", { class: "id" }, id ? idView(id, what) : "–");

// Views kept across the redraws of the event stream (every two seconds),
// so that a copy button's answer, or the ID it selected, stays on screen:
// idKept returns the view of id kept in views, or a new one, and keeps it
// in next.
function idKept(views, next, id, what) {
  const v = views.get(id) || idView(id, what);
  next.set(id, v);
  return v;
}
let nodeIDs = new Map(), peerIDs = new Map();

// --- Node ---------------------------------------------------------------

function renderNode(s) {
  const st = s.status;
  $("title-id").textContent = short(st.id);
  document.title = "nube " + short(st.id);
  const reach = { Public: "public", Private: "behind NAT", Unknown: "unknown yet" }[st.reachability] || st.reachability;
  const relayed = s.peers.some((p) => p.relayed);
  const offers = [s.offers.compute ? "compute" : "", "storage", s.offers.relay ? "relay" : ""].filter(Boolean).join(", ");
  const rows = [
    ["peer ID", st.id, "peer ID"], ["user", st.user_id, "user ID"], ["version", st.version],
    ["up for", st.uptime], ["reachability", reach + (relayed ? ", reached through a relay" : "")],
    ["offers", offers], ["DHT table", st.routing_table + " peers"],
    ["data dir", st.data_dir || "(in memory)", true], ["addresses", (st.addrs || []).join("\n"), true],
  ];
  const dl = $("node-info"), ids = new Map();
  dl.replaceChildren();
  for (const [k, v, mono] of rows) {
    dl.append(el("dt", {}, k));
    if (mono === "peer ID" || mono === "user ID") {
      dl.append(el("dd", { "data-key": k }, idKept(nodeIDs, ids, v, mono)));
      continue;
    }
    const dd = el("dd", mono ? { class: "mono" } : {});
    String(v).split("\n").forEach((line, i) => { if (i) dd.append(el("br")); dd.append(line); });
    dl.append(dd);
  }
  nodeIDs = ids;
}

// --- Peers --------------------------------------------------------------

function renderPeers(s) {
  $("peer-count").textContent = "(" + s.peers.length + " connected, " + s.known.length + " in the DHT table)";
  const ids = new Map();
  fillTable($("peer-table"), s.peers.map((p) => el("tr", {},
    el("td", { class: "id" }, idKept(peerIDs, ids, p.id, "peer ID")),
    el("td", {}, p.direction + (p.relayed ? " (relayed)" : "")),
    el("td", {}, transport(p.addrs)),
    el("td", {}, p.latency_ms ? p.latency_ms.toFixed(2) + " ms" : "–"))), 4, "no peers yet");
  peerIDs = ids;

  const g = $("graph");
  g.replaceChildren();
  const connected = new Set(s.peers.map((p) => p.id));
  const known = s.known.filter((id) => !connected.has(id));
  const ring = (ids, r, cls) => ids.map((id, i) => {
    const a = (2 * Math.PI * i) / Math.max(ids.length, 1) - Math.PI / 2;
    return { id, cls, x: r * Math.cos(a), y: r * Math.sin(a) };
  });
  const inner = ring(s.peers.map((p) => p.id), 110, "peer");
  const outer = ring(known, 185, "known");
  for (const n of inner) g.append(svg("line", { x1: 0, y1: 0, x2: n.x, y2: n.y }));
  for (const n of [...inner, ...outer]) {
    const node = svg("g", { "data-peer": n.id, class: n.cls });
    const c = svg("circle", { cx: n.x, cy: n.y, r: n.cls === "peer" ? 9 : 5, class: n.cls });
    const t = svg("title", {});
    t.textContent = n.id + (n.cls === "peer" ? " (connected)" : " (known through the DHT)");
    node.append(c, t);
    if (n.cls === "peer") {
      const label = svg("text", { x: n.x, y: n.y + 21 });
      label.textContent = n.id.slice(-6);
      node.append(label);
    }
    g.append(node);
  }
  const self = svg("g", { "data-peer": s.status.id, class: "self" });
  self.append(svg("circle", { cx: 0, cy: 0, r: 13, class: "self" }));
  const t = svg("title", {});
  t.textContent = s.status.id + " (this node)";
  self.append(t);
  g.append(self);
}

// --- Traffic ------------------------------------------------------------

function renderChart() {
  const c = $("chart");
  c.replaceChildren();
  const W = 600, H = 170, pad = 18;
  if (samples.length < 2) {
    const t = svg("text", { x: 10, y: 20 });
    t.textContent = "collecting samples…";
    c.append(t);
    return;
  }
  const t0 = samples[0].t, t1 = samples[samples.length - 1].t;
  const max = Math.max(1024, ...samples.map((h) => Math.max(h.in, h.out)));
  const x = (t) => ((t - t0) / Math.max(t1 - t0, 1)) * W;
  const y = (v) => H - pad - (v / max) * (H - 2 * pad);
  for (const dir of ["in", "out"]) {
    c.append(svg("polyline", { class: dir, points: samples.map((h) => x(h.t).toFixed(1) + "," + y(h[dir]).toFixed(1)).join(" ") }));
  }
  const top = svg("text", { x: 4, y: 13 });
  top.textContent = rate(max);
  const span = svg("text", { x: 4, y: H - 4 });
  span.textContent = "last " + Math.round((t1 - t0) / 60000 * 10) / 10 + " min";
  c.append(top, span);
}

function renderTraffic(s) {
  const t = s.traffic;
  samples.push({ t: Date.now(), in: t.rate_in, out: t.rate_out });
  if (samples.length > 150) samples = samples.slice(-150);
  $("rate-in").textContent = rate(t.rate_in) + " (" + bytes(t.in) + " in all)";
  $("rate-out").textContent = rate(t.rate_out) + " (" + bytes(t.out) + " in all)";
  renderChart();
  fillTable($("proto-table"), (t.protocols || []).slice(0, 12).map((p) => el("tr", {},
    el("td", { class: "mono" }, p.protocol || "(not negotiated)"), el("td", {}, bytes(p.in)), el("td", {}, bytes(p.out)),
    el("td", {}, rate(p.rate_in)), el("td", {}, rate(p.rate_out)))), 5, "no traffic yet");
}

// --- Lists: content, services, groups, spaces-------------------------------

async function api(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts));
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).message || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}

// capability says what a run was allowed and what it touched.
function capability(r) {
  const parts = [];
  if (r.allowed && r.allowed.length) parts.push("allowed " + r.allowed.join(", "));
  const t = r.touched;
  if (t) {
    if (t.read && t.read.length) parts.push("read " + t.read.join(", "));
    if (t.wrote && t.wrote.length) parts.push("wrote " + t.wrote.join(", "));
    if (t.calls && t.calls.length) parts.push("called " + t.calls.join(", "));
    if (t.bytes_read || t.bytes_written) parts.push(bytes(t.bytes_read || 0) + " in, " + bytes(t.bytes_written || 0) + " out");
  }
  return parts.length ? parts.join("; ") : "none";
}

// internalPin tells the pins nube keeps for itself by their names: service
// modules ("service module NAME") and descriptors ("service NAME@V"), the
// roots of spaces ("space ID", "space pending ID").
const internalPin = (p) => /^(service|space) /.test(p.name || "");

function pinRow(p) {
  return el("tr", { "data-cid": p.cid },
    el("td", { class: "mono", title: p.cid }, p.cid.slice(0, 12) + "…" + p.cid.slice(-6)), el("td", { class: "wrap" }, p.name || ""),
    el("td", {}, (p.dir ? "dir, " : "") + bytes(p.size)), el("td", {}, new Date(p.created).toLocaleString()));
}

// setOptions fills a <datalist> or <select> with values, keeping what is
// chosen, and leaves it alone if nothing changed.
function setOptions(list, values) {
  const have = [...list.options].map((o) => o.value);
  if (have.length === values.length && have.every((v, i) => v === values[i])) return;
  const keep = list.value;
  list.replaceChildren(...values.map((v) => el("option", { value: v }, v)));
  if (values.includes(keep)) list.value = keep;
}

function renderLists(l) {
  const kept = l.pins.filter(internalPin);
  fillTable($("pin-table"), l.pins.filter((p) => !internalPin(p)).map(pinRow), 4, "no files yet: add one above");
  fillTable($("internal-table"), kept.map(pinRow), 4, "none");
  $("internal-count").textContent = "(" + kept.length + ")";
  setOptions($("svc-names"), [...new Set(l.services.map((s) => s.name))].sort());
  setOptions($("grant-space"), l.spaces.filter((x) => x.role === "home").map((x) => x.name).sort());
  fillTable($("svc-table"), l.services.map((s) => el("tr", {},
    el("td", {}, s.name), el("td", {}, s.version || ""), el("td", { class: "wrap" }, s.description || ""),
    el("td", {}, String((s.runners || []).length)))), 4, "no services known");
  fillTable($("run-table"), l.runs.map((r) => el("tr", {},
    el("td", {}, new Date(r.at).toLocaleTimeString()), el("td", {}, r.service), idCell(r.caller, "caller's peer ID"),
    el("td", {}, ms(r.usage.cpu)), el("td", {}, ms(r.usage.wall)), el("td", {}, r.earned ? credits(r.earned) : "–"),
    el("td", {}, r.error ? "failed: " + r.error : (r.cold ? "ok (cold)" : "ok")),
    el("td", { class: "wrap" }, capability(r)))),
  8, "no runs for others yet");
  fillTable($("call-table"), l.calls.map((c) => el("tr", {},
    el("td", {}, new Date(c.at).toLocaleTimeString()), el("td", {}, c.service), idCell(c.peer, "peer ID"),
    el("td", {}, ms(c.usage.cpu)), el("td", {}, ms(c.elapsed)), el("td", {}, c.cost ? credits(c.cost) : "free"),
    el("td", { class: "wrap" }, c.error ? "failed: " + c.error : "ok"))),
  7, "no calls made yet");

  fillTable($("space-table"), l.spaces.map((x) => el("tr", { "data-space": x.id },
    el("td", { class: "mono", title: x.id }, short(x.owner) + "/" + x.name), el("td", {}, x.role), el("td", {}, String(x.seq)),
    el("td", {}, String(x.keys)), el("td", {}, bytes(x.bytes)),
    el("td", { class: "wrap" }, (x.policy || "") + (x.holders ? " (" + x.holders + " holding)" : "")))),
  6, "no spaces here yet. Create one above.");

  renderTopics(l.topics || []);
  renderJobs(l.jobs || []);

  const gl = $("group-list");
  gl.replaceChildren();
  if (l.groups.length === 0) gl.append(el("p", { class: "empty" }, "This node is in no group. Form or join one below."));
  for (const g of l.groups) {
    const down = g.members.filter((m) => m.state === "down").length;
    const t = el("table", {}, el("caption", {}, g.name + " — term " + g.term + ", this node " + g.state +
      ", log " + g.last_index + ", committed " + g.commit_index + (down ? ", " + down + " member" + (down > 1 ? "s" : "") + " down" : "")),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "member"), el("th", { scope: "col" }, "state"), el("th", { scope: "col" }, "last contact"))),
      el("tbody"));
    fillTable(t, g.members.map((m) => el("tr", {},
      el("td", { class: "id" }, idView(m.id, "peer ID"), m.id === g.leader ? " ★" : ""),
      el("td", { class: "state-" + m.state }, m.state),
      el("td", {}, m.last_contact ? Math.max(0, (Date.now() - new Date(m.last_contact)) / 1000).toFixed(1) + " s ago" : "–"))), 3, "no members");
    gl.append(el("div", { class: "group scroll" }, t));
  }
}

// --- Jobs ---------------------------------------------------------------

// jobsTimer reloads the lists while a job runs, so its progress moves.
let jobsTimer = 0;

// dur says a duration in nanoseconds for people: ms, s, or min and s.
const dur = (ns) => ns < 1e9 ? ms(ns) : ns < 60e9 ? (ns / 1e9).toFixed(1) + " s" : Math.floor(ns / 60e9) + " min " + Math.round((ns % 60e9) / 1e9) + " s";

function renderJobs(jobs) {
  fillTable($("job-table"), jobs.map((j) => {
    const p = j.progress, read = p.bytes_local + p.bytes_fetched;
    const state = j.state === "running" ? "running: " + (p.phase || "starting") : j.state;
    const tasks = p.done + "/" + p.tasks + (p.running ? ", " + p.running + " running" : "") + (p.failed ? ", " + p.failed + " failed" : "");
    const local = read > 0 ? Math.round(100 * p.bytes_local / read) + "% of " + bytes(read) : "–";
    const time = dur(p.elapsed) + (j.state === "running" && p.eta ? ", about " + dur(p.eta) + " left" : "");
    const result = j.result ? el("td", { class: "mono", title: j.result }, j.result) : el("td", { class: "wrap" + (j.error ? " state-down" : "") }, j.error || "–");
    return el("tr", { "data-job": j.id, "data-state": j.state },
      el("td", { class: "mono", title: j.spec.map + (j.spec.reduce ? " → " + j.spec.reduce : "") + " over " + j.spec.input }, j.id),
      el("td", {}, state), el("td", {}, tasks), el("td", {}, local), el("td", {}, String(p.nodes)), el("td", {}, time), result);
  }), 7, "no jobs here yet");
  clearTimeout(jobsTimer);
  if (jobs.some((j) => j.state === "running")) jobsTimer = setTimeout(loadLists, 1000);
}

// --- Topics -------------------------------------------------------------

// topicCounts keeps each topic's counts at the last load, for rates.
let topicCounts = new Map();

// perSecond says a count and, when the last load saw it too, its rate.
function perSecond(now, before, secs) {
  const r = before !== undefined && secs > 0 ? Math.max(0, now - before) / secs : null;
  return String(now) + (r === null ? "" : " (" + (r < 10 ? r.toFixed(1) : r.toFixed(0)) + "/s)");
}

function renderTopics(topics) {
  const at = Date.now(), next = new Map();
  const rows = topics.map((x) => {
    const before = topicCounts.get(x.id), secs = before ? (at - before.at) / 1000 : 0, r = x.rates;
    next.set(x.id, { at, published: r.published, delivered: r.delivered, dropped: r.dropped });
    const [owner, name] = x.id.split("/");
    let offsets = x.durable ? "–" : "live";
    let consumers = "";
    if (x.info) {
      offsets = x.info.next > x.info.first ? x.info.first + "–" + (x.info.next - 1) + " (" + bytes(x.info.bytes) + ")" : "none yet";
      consumers = (x.info.consumers || []).map((c) => c.name + ": lag " + c.lag + (c.pending ? ", " + c.pending + " pending" : "")).join("; ");
    } else if (x.info_error) {
      offsets = "? " + x.info_error;
    }
    return el("tr", { "data-topic": x.id },
      el("td", { class: "mono", title: x.id }, short(owner) + "/" + name), el("td", {}, x.role + (x.durable ? ", durable" : "")),
      el("td", {}, perSecond(r.published, before && before.published, secs)),
      el("td", {}, perSecond(r.delivered, before && before.delivered, secs)),
      el("td", { class: r.dropped ? "state-down" : "" }, perSecond(r.dropped, before && before.dropped, secs)),
      el("td", { class: "wrap" }, offsets), el("td", { class: "wrap" }, consumers || "–"));
  });
  topicCounts = next;
  fillTable($("topic-table"), rows, 7, "no topics here yet. Create one above.");
  setOptions($("pub-topic"), topics.filter((x) => x.role === "owner").map((x) => x.id.split("/")[1]).sort());
}

// parseRetain reads what a topic keeps, as nube topic create --retain
// does: a count (1000000), a size (512MiB, 1GiB; K, M, G are powers of
// 1024) and an age (90m, 24h, 7d), any of them, apart by spaces or commas.
function parseRetain(text) {
  const r = {};
  const units = { b: 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20, g: 1 << 30, gb: 1 << 30, gib: 1 << 30 };
  const ages = { s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 };
  for (const w of text.split(/[\s,]+/).filter(Boolean)) {
    let m;
    if (/^\d+$/.test(w)) r.count = Number(w);
    else if ((m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(w))) r.age = Math.round(Number(m[1]) * ages[m[2]]);
    else if ((m = /^(\d+(?:\.\d+)?)\s*([kmg]?i?b?)$/i.exec(w)) && units[m[2].toLowerCase()]) r.bytes = Math.round(Number(m[1]) * units[m[2].toLowerCase()]);
    else throw new Error("Not created: keeps " + JSON.stringify(w) + "? Give a count (1000000), a size (1GiB) or an age (24h).");
  }
  return r;
}

// credits formats millicredits as credits: 2500 → "2.500".
function credits(mc) {
  const neg = mc < 0, a = Math.abs(mc);
  return (neg ? "-" : "") + Math.floor(a / 1000) + "." + String(a % 1000).padStart(3, "0");
}

// The ledger may be slow to find (or absent): the credit panel loads on its
// own, so the other panels never wait for it.
let creditBusy = false;
async function loadCredit() {
  if (creditBusy) return;
  creditBusy = true;
  const sum = $("credit-summary");
  try {
    const a = await (await api("/api/v0/credit/account?history=1")).json();
    sum.className = "";
    sum.textContent = "Balance " + credits(a.balance) + " credits, " + credits(a.available) + " available (limit " +
      credits(a.limit) + (a.reserved ? ", " + credits(a.reserved) + " held for runs under way" : "") + "). Ledger " + a.ledger + ".";
    fillTable($("credit-table"), (a.history || []).slice().reverse().map((e) => el("tr", {},
      el("td", {}, new Date(e.time).toLocaleString()), el("td", {}, e.kind),
      el("td", { class: e.amount < 0 ? "debit" : "credit" }, credits(e.amount)),
      idCell(e.peer, "ID"), el("td", { class: "wrap" }, e.memo || ""))),
    5, "no entries yet");
  } catch (e) {
    sum.className = "empty";
    sum.textContent = "No ledger: " + e.message + ". Form one with: nube ledger create PEER…";
    fillTable($("credit-table"), [], 5, "no entries");
  } finally {
    creditBusy = false;
  }
}

let listsBusy = false;
async function loadLists() {
  if (listsBusy) return;
  listsBusy = true;
  try {
    renderLists(await (await api("/api/v0/dashboard")).json());
  } catch (e) {
    /* the event stream shows the connection state */
  } finally {
    listsBusy = false;
  }
}

// --- Actions ------------------------------------------------------------

function addFile(ev) {
  ev.preventDefault();
  const f = $("add-file").files[0];
  const out = $("add-result");
  out.className = "";
  if (!f) { out.textContent = "Choose a file first."; return; }
  const bar = $("add-progress");
  bar.hidden = false;
  bar.value = 0;
  $("add-btn").disabled = true;
  const x = new XMLHttpRequest();
  x.open("POST", "/api/v0/add?name=" + encodeURIComponent(f.name));
  x.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
  x.onload = () => {
    $("add-btn").disabled = false;
    bar.hidden = true;
    let r = {};
    try { r = JSON.parse(x.responseText); } catch (e) { /* keep {} */ }
    if (x.status !== 200) { out.className = "err"; out.textContent = "Not added: " + (r.message || x.status); return; }
    out.textContent = "Added " + f.name + " (" + bytes(r.bytes) + "): " + r.cid;
    out.dataset.cid = r.cid;
    loadLists();
  };
  x.onerror = () => { $("add-btn").disabled = false; bar.hidden = true; out.className = "err"; out.textContent = "Upload failed: is the node running?"; };
  x.send(f);
}

async function fetchCID(ev) {
  ev.preventDefault();
  const cid = $("fetch-cid").value.trim();
  const out = $("fetch-result"), bar = $("fetch-progress"), peers = $("fetch-peers");
  out.className = "";
  if (!cid) { out.textContent = "Paste a CID first."; return; }
  $("fetch-btn").disabled = true;
  bar.hidden = false;
  bar.removeAttribute("value");
  out.textContent = "Looking for providers…";
  try {
    const r = await api("/api/v0/fetch?cid=" + encodeURIComponent(cid), { method: "POST" });
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "", last = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        last = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        out.textContent = bytes(last.bytes) + " in " + last.blocks + " blocks";
        const max = Math.max(1, ...last.peers.map((p) => p.bytes));
        peers.replaceChildren(...last.peers.map((p) => el("li", {},
          el("span", { class: "mono", title: p.peer }, short(p.peer)),
          el("span", { class: "bar" }), el("span", {}, bytes(p.bytes)))));
        [...peers.querySelectorAll(".bar")].forEach((b, k) => { b.style.width = (100 * last.peers[k].bytes / max) + "%"; });
      }
    }
    if (last && last.error) throw new Error(last.error.message);
    out.textContent = "Pinned " + cid + (last ? " (" + bytes(last.bytes) + " fetched)" : "");
    loadLists();
  } catch (e) {
    out.className = "err";
    out.textContent = "Not fetched: " + e.message;
  } finally {
    $("fetch-btn").disabled = false;
    bar.hidden = true;
  }
}

// post sends a JSON body and returns the JSON answer.
async function post(path, body) {
  return (await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).json();
}

// action runs a form's work with its button disabled, and says in its
// output how it went: what work returns, or the error.
function action(form, out, work) {
  $(form).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const o = $(out), buttons = $(form).querySelectorAll("button[type=submit]");
    o.className = "";
    o.textContent = "…";
    buttons.forEach((b) => { b.disabled = true; });
    try {
      o.textContent = await work(ev);
    } catch (e) {
      o.className = "err";
      o.textContent = e.message;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
}

const words = (id) => $(id).value.trim().split(/[\s,]+/).filter(Boolean);

// parseCredits reads "2.5" as 2500 millicredits.
function parseCredits(s) {
  const m = /^(\d+)(?:\.(\d{1,3}))?$/.exec(s.trim());
  if (!m) throw new Error("Not sent: the amount is a number of credits, with up to three decimals, such as 2.5");
  return Number(m[1]) * 1000 + Number((m[2] || "").padEnd(3, "0"));
}

// base64Text decodes a call's output (base64 in JSON) as UTF-8.
function base64Text(b64) {
  const bin = atob(b64 || "");
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

action("publish-form", "publish-result", async () => {
  const f = $("publish-file").files[0];
  if (!f) throw new Error("Choose a .wasm file first.");
  const name = $("publish-name").value.trim() || f.name.replace(/\.wasm$/i, "").toLowerCase();
  let r;
  try {
    r = await (await api("/api/v0/service/publish?name=" + encodeURIComponent(name), { method: "POST", body: f })).json();
  } catch (e) {
    throw new Error("Not published: " + e.message);
  }
  $("publish-result").dataset.cid = r.cid;
  if (!$("call-ref").value) $("call-ref").value = r.name;
  loadLists();
  return "Published " + r.name + (r.version ? "@" + r.version : "") + ": " + r.cid;
});

action("call-form", "call-result", async () => {
  const ref = $("call-ref").value.trim(), pre = $("call-output");
  if (!ref) throw new Error("Name a service first.");
  pre.hidden = true;
  let res;
  try {
    const text = await (await api("/api/v0/call?n=1&ref=" + encodeURIComponent(ref), { method: "POST", body: $("call-input").value })).text();
    res = text.split("\n").filter(Boolean).map((l) => JSON.parse(l))[0];
  } catch (e) {
    throw new Error("Not called: " + e.message);
  }
  if (!res) throw new Error("Not called: no node answered");
  if (res.error) throw new Error("Failed on " + short(res.peer || "?") + ": " + res.error);
  pre.textContent = res.output_cid ? res.output_cid : base64Text(res.output);
  pre.hidden = false;
  loadLists();
  return "Ran on " + short(res.peer) + " in " + res.elapsed_ms.toFixed(1) + " ms" + (res.cold ? " (cold start)" : "") +
    (res.cost ? ", cost " + credits(res.cost) + " credits" : "") + ". Output:";
});

action("group-form", "group-result", async (ev) => {
  const name = $("group-name").value.trim(), peers = words("group-peers");
  const join = ev.submitter && ev.submitter.value === "join";
  if (!name) throw new Error("Name the group first.");
  let st;
  try {
    if (join) {
      if (peers.length !== 1) throw new Error("to join, give the peer ID of one member");
      st = await post("/api/v0/group/join", { name, via: peers[0] });
    } else {
      st = await post("/api/v0/group/create", { name, members: peers });
    }
  } catch (e) {
    throw new Error((join ? "Not joined: " : "Not created: ") + e.message);
  }
  loadLists();
  return (join ? "Joined " : "Formed ") + st.name + ": " + st.members.length + " members, this node " + st.state + ".";
});

action("space-form", "space-result", async () => {
  const name = $("space-name").value.trim(), on = words("space-on");
  if (!name) throw new Error("Name the space first.");
  let info;
  try {
    info = await post("/api/v0/space/create", on.length ? { name, on } : { name, local: true });
  } catch (e) {
    throw new Error("Not created: " + e.message);
  }
  $("space-result").dataset.space = info.id;
  loadLists();
  return "Created " + info.name + " (" + info.id + ").";
});

action("grant-form", "grant-result", async () => {
  const space = $("grant-space").value, user = $("grant-user").value.trim();
  const read = $("grant-read").checked, write = $("grant-write").checked;
  if (!space) throw new Error("Create a space first: only its home grants it.");
  if (!user) throw new Error("Paste the user ID to grant it to (nube id prints it on their node).");
  let g;
  try {
    g = await post("/api/v0/space/grant", { space, user, read, write });
  } catch (e) {
    throw new Error("Not granted: " + e.message);
  }
  $("grant-result").dataset.grant = g.id;
  loadLists();
  return "Granted " + g.rights + " on " + space + " to " + short(g.to) + " (grant " + g.id + ").";
});

action("topic-form", "topic-result", async () => {
  const name = $("topic-name").value.trim();
  if (!name) throw new Error("Name the topic first.");
  const retain = parseRetain($("topic-retain").value);
  const durable = Object.keys(retain).length > 0;
  let info;
  try {
    info = await post("/api/v0/topic/create", durable ? { name, retain, local: true } : { name, local: true });
  } catch (e) {
    throw new Error("Not created: " + e.message);
  }
  $("topic-result").dataset.topic = info.id;
  loadLists();
  return "Created " + info.name + (durable ? ", durable" : ", live") + " (" + info.id + ").";
});

action("pub-form", "pub-result", async () => {
  const topic = $("pub-topic").value;
  if (!topic) throw new Error("Create a topic first.");
  let ack;
  try {
    ack = await (await api("/api/v0/topic/publish?topic=" + encodeURIComponent(topic), { method: "POST", body: $("pub-message").value })).json();
  } catch (e) {
    throw new Error("Not published: " + e.message);
  }
  $("pub-result").dataset.offset = String(ack.offset);
  loadLists();
  return "Published on " + topic + (ack.offset ? " at offset " + ack.offset : "") + (ack.duplicate ? " (a duplicate)" : "") + ".";
});

// loadUserNodes lists the user's nodes this node knows.
async function loadUserNodes() {
  const nodes = await (await api("/api/v0/user/nodes")).json();
  fillTable($("user-node-table"), nodes.map((n) => el("tr", {},
    el("td", { class: "mono", title: n.id }, short(n.id) + (n.self ? " (this node)" : "")),
    el("td", {}, n.since ? new Date(n.since).toLocaleDateString() : ""),
    el("td", {}, n.removed ? "removed" : (n.key ? "holds the user key" : "joined by invite")))), 3, "no other node of yours yet");
}

action("invite-form", "invite-result", async () => {
  const o = await post("/api/v0/user/invite", {});
  return "Give this to the new node (nube user join, or Join your user there); good once, until " +
    new Date(o.expires).toLocaleTimeString() + ": " + o.invite;
});

action("join-form", "join-result", async () => {
  const invite = $("join-invite").value.trim();
  if (!invite) throw new Error("Paste an invite from another of your nodes first (Invite a node, there).");
  const n = await post("/api/v0/user/join", { invite });
  loadUserNodes();
  return "This node is now one of user " + short(n.user) + "'s" + (n.restart ? "; restart it (nube up) for it to take effect." : ".");
});

action("send-form", "send-result", async () => {
  const to = $("send-to").value.trim(), memo = $("send-memo").value.trim();
  if (!to) throw new Error("Paste the payee's user or node ID first.");
  const amount = parseCredits($("send-amount").value);
  let o;
  try {
    o = await post("/api/v0/credit/send", memo ? { to, amount, memo } : { to, amount });
  } catch (e) {
    throw new Error("Not sent: " + e.message);
  }
  loadCredit();
  return "Sent " + credits(amount) + " credits to " + short(o.payee) + (o.node ? " (the user of node " + short(o.node) + ")" : "") +
    ". Your balance: " + credits(o.balance) + ".";
});

// --- Live updates -------------------------------------------------------

function connect() {
  const es = new EventSource("/api/v0/events");
  const conn = $("conn");
  es.onopen = () => { conn.textContent = "live"; conn.className = "conn live"; loadLists(); };
  es.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "conn down"; };
  es.addEventListener("history", (e) => {
    samples = JSON.parse(e.data).map((h) => ({ t: h.t, in: h.in, out: h.out }));
  });
  es.addEventListener("state", (e) => {
    const s = JSON.parse(e.data);
    lastState = s;
    renderNode(s);
    renderPeers(s);
    renderTraffic(s);
  });
}

$("add-form").addEventListener("submit", addFile);
$("fetch-form").addEventListener("submit", fetchCID);
connect();
loadLists();
setInterval(loadLists, 10000);
loadCredit();
setInterval(loadCredit, 10000);
loadUserNodes().catch(() => {});
