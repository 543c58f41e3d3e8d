// shipway's dashboard: reads the platform's JSON (/api/...) and draws the page. Every
// text from the platform goes through textContent, never innerHTML.
"use strict";

const APP_REFRESH_MS = 3000;
const LOG_REFRESH_MS = 1500;
const LOG_KEEP_LINES = 2000;

const page = {
  app: null,          // the app shown, from the path (/apps/NAME)
  view: null,         // its last answer
  deployment: null,   // the deployment whose output is shown
  chosenByUser: false,
  output: null,       // {id, next, finished}
  logNext: null,
  hours: 1,           // the charts' window
  metrics: null,      // the router's figures (/metrics)
  timeline: [],       // the app's events, newest first
  stats: null,        // the containers' figures and memory samples (/stats)
  timers: [],
};

// An element: h("td", {class: "num"}, "12", child...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// --- formats ---------------------------------------------------------------

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return new Date(ms).toISOString().slice(0, 10);
}

function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + Math.round(s % 60) + " s";
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
}

// The colour class of a status (container or deployment).
function tone(status) {
  if (!status) return "";
  if (status === "running" || status === "success") return status;
  if (status === "crashed" || status.endsWith("-error") || status === "aborted") return "error";
  if (status === "stopped") return "";
  return "progress";
}

function pill(status, extra) {
  return h("span", { class: "pill " + tone(status) + (extra ? " " + extra : "") }, status);
}

// Terminal escape sequences are shown as nothing; the rest as text.
function plain(text) {
  return text.replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]/g, "").replace(/\x1b[@-_]/g, "");
}

// --- the frame -------------------------------------------------------------

function appFromPath() {
  const m = location.pathname.match(/^\/apps\/([a-z0-9-]+)\/?$/);
  return m ? m[1] : null;
}

function stopTimers() {
  page.timers.forEach(clearTimeout);
  page.timers = [];
}

function later(fn, ms) {
  page.timers.push(setTimeout(fn, ms));
}

function go(path) {
  history.pushState(null, "", path);
  show();
}

window.addEventListener("popstate", show);

function stamp() {
  document.getElementById("refreshed").textContent =
    "updated " + new Date().toLocaleTimeString();
}

async function sideList() {
  let apps;
  try {
    apps = await get("/api/apps");
  } catch (e) {
    return null;
  }
  const list = document.getElementById("apps");
  list.replaceChildren(...apps.map((a) =>
    h("li", {}, h("a", {
      href: "/apps/" + a.name,
      class: a.name === page.app ? "current" : null,
      onclick: (ev) => { ev.preventDefault(); go("/apps/" + a.name); },
    }, h("span", { class: "dot " + a.status, title: a.status }), a.name))));
  if (apps.length === 0) list.replaceChildren(h("li", { class: "empty" }, h("a", {}, "none yet")));
  return apps;
}

async function show() {
  stopTimers();
  page.app = appFromPath();
  page.view = null;
  page.deployment = null;
  page.chosenByUser = false;
  page.output = null;
  page.logNext = null;
  const apps = await sideList();
  const main = document.getElementById("main");
  if (apps === null) {
    main.replaceChildren(h("p", { class: "empty" }, "The platform does not answer: `shipway up` starts it."));
    return;
  }
  if (page.app === null) {
    overview(main, apps);
    later(show, APP_REFRESH_MS * 2);
    return;
  }
  main.replaceChildren(appFrame());
  refreshApp();
  followLogs();
}

function overview(main, apps) {
  const cards = apps.map((a) =>
    h("a", { class: "card", href: "/apps/" + a.name, onclick: (ev) => { ev.preventDefault(); go("/apps/" + a.name); } },
      h("div", { class: "name" }, h("span", { class: "dot " + a.status }), a.name),
      h("div", { class: "line" }, a.status + " · " + a.containers + (a.containers === 1 ? " container" : " containers")),
      h("div", { class: "line" }, a.release ? "release v" + a.release : "never deployed"),
      h("div", { class: "line mono" }, a.url || "")));
  main.replaceChildren(
    h("div", { class: "app-head" }, h("h1", {}, "Apps")),
    h("p", { class: "facts" }, apps.length === 0
      ? "No app yet: `shipway deploy` in an app's folder creates one."
      : "Every app of this platform. Pick one to see its deployments, containers and logs."),
    h("div", { class: "cards" }, cards));
  stamp();
}

// The app's page: its parts, filled as answers come.
function appFrame() {
  return h("div", {},
    h("div", { id: "head" }),
    h("div", { class: "section" }, h("h2", {}, "Metrics"), h("div", { class: "window", id: "window" })),
    h("div", { class: "grid" },
      h("div", { class: "card" }, h("h2", {}, "Requests per minute", h("span", { class: "note", id: "requests-note" })), h("div", { id: "requests" })),
      h("div", { class: "card" }, h("h2", {}, "Response time", h("span", { class: "note", id: "times-note" })), h("div", { id: "times" }))),
    h("div", { class: "card" }, h("h2", {}, "Memory per container", h("span", { class: "note", id: "memory-note" })), h("div", { id: "memory" })),
    h("div", { class: "card" }, h("h2", {}, "Containers", h("span", { class: "note", id: "formation" })), h("div", { id: "containers" })),
    h("div", { class: "card" }, h("h2", {}, "Deployments"), h("div", { id: "deployments" })),
    h("div", { class: "card" }, h("h2", {}, "Timeline", h("span", { class: "note" }, "newest first, as `shipway timeline`")), h("div", { id: "timeline", class: "timeline" })),
    h("div", { class: "card" }, h("h2", { id: "output-title" }, "Deployment output"), h("pre", { class: "log", id: "output" })),
    h("div", { class: "card" }, h("h2", {}, "Logs", h("span", { class: "note" }, "app.log, as `shipway logs -f`")), h("pre", { class: "log", id: "logs" })));
}

async function refreshApp() {
  const name = page.app;
  let view, metrics, timeline, stats;
  try {
    [view, metrics, timeline, stats] = await Promise.all([
      get("/api/apps/" + name),
      get("/api/apps/" + name + "/metrics?hours=" + page.hours),
      get("/api/apps/" + name + "/timeline"),
      get("/api/apps/" + name + "/stats?hours=" + page.hours),
    ]);
  } catch (e) {
    if (name !== page.app) return;
    if (page.view === null) {
      document.getElementById("main").replaceChildren(h("p", { class: "empty" }, e.message));
    } else {
      // Shown as it was, and asked again: the platform may be restarting.
      document.getElementById("refreshed").textContent = e.message;
    }
    later(refreshApp, APP_REFRESH_MS * 2);
    return;
  }
  if (name !== page.app) return;
  page.view = view;
  page.metrics = metrics;
  page.timeline = timeline;
  page.stats = stats;
  drawHead(view);
  drawWindow();
  drawMetrics(view, metrics, timeline);
  drawMemory(view, stats, timeline, Date.parse(metrics.measured_at));
  drawTimeline(timeline);
  drawContainers(view);
  drawDeployments(view);
  if (!page.chosenByUser && view.deployments.length > 0 && page.deployment !== view.deployments[0].id) {
    chooseDeployment(view.deployments[0].id, false);
  }
  stamp();
  later(refreshApp, APP_REFRESH_MS);
}

function drawHead(view) {
  const facts = [
    ["release", view.release ? "v" + view.release : "none"],
    ["stack", view.stack],
    ["config vars", view.config_vars.length ? view.config_vars.join(", ") : "none"],
  ];
  document.getElementById("head").replaceChildren(
    h("div", { class: "app-head" }, h("h1", {}, view.name), pill(view.status),
      view.url ? h("a", { class: "mono", href: view.url, target: "_blank", rel: "noopener" }, view.url) : null),
    h("p", { class: "facts" }, facts.map(([k, v]) => h("span", {}, k + " ", h("b", {}, v)))));
}

function drawContainers(view) {
  const box = document.getElementById("containers");
  const formation = Object.entries(view.formation).map(([t, n]) => t + ":" + n).join("  ");
  document.getElementById("formation").textContent = formation ? "formation " + formation : "";
  if (view.containers.length === 0) {
    box.replaceChildren(h("p", { class: "empty" }, "No container runs: deploy, or scale a process type up."));
    return;
  }
  const figures = {};
  for (const f of (page.stats ? page.stats.stats.containers : [])) figures[f.name] = f;
  const rows = view.containers.map((c) => h("tr", {},
    h("td", {}, h("b", {}, c.name), figures[c.name] && figures[c.name].size ? h("span", { class: "size" }, figures[c.name].size) : null),
    h("td", {}, pill(c.status), c.exit ? h("span", { class: "empty" }, " " + c.exit) : null),
    h("td", { class: "nowrap" }, memoryCell(figures[c.name])),
    h("td", { class: "num" }, figures[c.name] && figures[c.name].cpu_percent !== null ? figures[c.name].cpu_percent.toFixed(1) + " %" : "–"),
    h("td", { class: "num" }, c.release ? "v" + c.release : "–"),
    h("td", { class: "num" }, c.uptime_ms === null ? "–" : duration(c.uptime_ms)),
    h("td", { class: "num" }, c.restarts),
    h("td", { class: "num" }, c.port || "–"),
    h("td", { class: "cmd mono", title: c.command }, c.command)));
  box.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "container"), h("th", {}, "status"), h("th", {}, "memory"), h("th", { class: "num" }, "cpu"), h("th", { class: "num" }, "release"),
      h("th", { class: "num" }, "up"), h("th", { class: "num" }, "restarts"), h("th", { class: "num" }, "port"), h("th", {}, "command"))),
    h("tbody", {}, rows)));
}

// A bar filled to `share` (0 to 1). Its width is set through the DOM: the page's
// Content-Security-Policy refuses inline style attributes.
function meter(share) {
  const fill = h("span", {});
  fill.style.width = (share * 100).toFixed(1) + "%";
  return h("span", { class: "meter" + (share > 0.9 ? " high" : "") }, fill);
}

// Memory used against the size's limit: a meter, red past 90 %.
function memoryCell(f) {
  if (!f || f.memory_bytes === null) return "–";
  if (!f.memory_limit_bytes) return bytes(f.memory_bytes);
  const share = Math.min(1, f.memory_bytes / f.memory_limit_bytes);
  return h("span", { title: "highest since start: " + bytes(f.memory_max_bytes) },
    meter(share),
    bytes(f.memory_bytes) + " / " + bytes(f.memory_limit_bytes));
}

function drawDeployments(view) {
  const box = document.getElementById("deployments");
  if (view.deployments.length === 0) {
    box.replaceChildren(h("p", { class: "empty" }, "No deployment yet."));
    return;
  }
  const rows = view.deployments.slice(0, 15).map((d) => {
    const status = d.statuses.length ? d.statuses[d.statuses.length - 1].status : "queued";
    const started = d.statuses.length ? d.statuses[0].at : null;
    return h("tr", {
      class: "pick" + (d.id === page.deployment ? " chosen" : ""),
      "data-deployment": d.id,
      onclick: () => chooseDeployment(d.id, true),
    },
      h("td", { class: "mono nowrap" }, d.id),
      h("td", {}, pill(status)),
      h("td", { class: "num" }, d.release ? "v" + d.release : "–"),
      h("td", { class: "nowrap" }, started ? ago(started) : "–"),
      h("td", { class: "num" }, duration(d.duration_ms)),
      h("td", { class: "cmd", title: d.source }, d.source + (d.git_ref ? " @ " + d.git_ref : "")),
      // A buildpack by its last path segment (a bundled one's name); whole on hover.
      h("td", { title: d.buildpacks.join("\n") }, d.buildpacks.map((b) => b.replace(/\/+$/, "").split("/").pop()).join(", ")));
  });
  box.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "id"), h("th", {}, "status"), h("th", { class: "num" }, "release"),
      h("th", {}, "started"), h("th", { class: "num" }, "duration"), h("th", {}, "source"), h("th", {}, "buildpacks"))),
    h("tbody", {}, rows)));
}

// --- charts ----------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
const CHART = { w: 560, h: 180, left: 46, right: 12, top: 14, bottom: 24 };

// An SVG element, as h() makes HTML ones.
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// The smallest 1, 2 or 5 times a power of ten at or above v.
function nice(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function clock(t) {
  const d = new Date(t);
  return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
}

// A time chart from `from` to `to` (ms): `bars` ({t, value, part, title}: `part` of the
// value drawn red), `lines` ({cls, points: [[t, v]]}, broken where a minute is missing),
// and `marks` ({t, label, kind}) drawn as vertical lines over them.
function timeChart({ from, to, bars, lines, marks, format, raw, round, width }) {
  const { h: ht, left, right, top, bottom } = CHART;
  const w = width || CHART.w;
  const values = bars.map((b) => b.value).concat(lines.flatMap((l) => l.points.map((p) => p[1])));
  const max = (round || nice)(Math.max(...values, 0));
  const x = (t) => left + ((t - from) / (to - from)) * (w - left - right);
  const y = (v) => top + (1 - v / max) * (ht - top - bottom);
  const slot = Math.max(1.5, ((w - left - right) * 60000) / (to - from) - 1);
  const chart = svg("svg", {
    class: "chart", viewBox: `0 0 ${w} ${ht}`, role: "img",
    "data-points": bars.length + lines.reduce((n, l) => n + l.points.length, 0),
  });
  for (const v of [0, max / 2, max]) {
    chart.append(svg("line", { class: "grid", x1: left, x2: w - right, y1: y(v), y2: y(v) }),
      svg("text", { class: "axis", x: left - 6, y: y(v) + 4, "text-anchor": "end" }, format(v)));
  }
  for (const t of [from, (from + to) / 2, to]) {
    chart.append(svg("text", { class: "axis", x: x(t), y: ht - 6, "text-anchor": t === from ? "start" : t === to ? "end" : "middle" }, clock(t)));
  }
  for (const b of bars) {
    const bar = svg("g", {}, svg("title", {}, b.title),
      svg("rect", { class: "bar", x: x(b.t), y: y(b.value), width: slot, height: y(0) - y(b.value) }));
    if (b.part > 0) bar.append(svg("rect", { class: "bar err", x: x(b.t), y: y(b.part), width: slot, height: y(0) - y(b.part) }));
    chart.append(bar);
  }
  // A minute's figure sits in its middle; a sample (raw) at its time.
  const at = (t) => x(raw ? t : t + 30000);
  for (const l of lines) {
    const gap = l.gap || 60000;
    let d = "", last = null;
    for (const [t, v] of l.points) {
      d += (last !== null && t - last <= gap ? " L" : " M") + at(t).toFixed(1) + " " + y(v).toFixed(1);
      last = t;
    }
    chart.append(svg("path", { class: "line " + l.cls, d: d.trim() }));
    // A lone minute would be an invisible path: a dot shows it.
    for (let i = 0; i < l.points.length; i++) {
      const [t, v] = l.points[i];
      const near = (j) => j >= 0 && j < l.points.length && Math.abs(l.points[j][0] - t) <= gap;
      if (!near(i - 1) && !near(i + 1)) chart.append(svg("circle", { class: "dot " + l.cls, cx: at(t), cy: y(v), r: 2.5 }));
    }
  }
  // Marks close together (a deployment, then a restart and a scale within moments) have
  // their labels stacked rather than drawn over each other.
  const shown = marks.filter((m) => m.t >= from && m.t <= to).sort((a, b) => a.t - b.t);
  shown.forEach((m, i) => {
    const level = shown.slice(0, i).filter((o) => x(m.t) - x(o.t) < 48).length;
    const ly = top + 4 + level * 11;
    // Near the right edge, the label goes left of its line.
    const label = x(m.t) > w - right - 48
      ? svg("text", { x: x(m.t) - 3, y: ly, "text-anchor": "end" }, m.label)
      : svg("text", { x: x(m.t) + 3, y: ly }, m.label);
    chart.append(svg("g", { class: "mark " + m.kind }, svg("title", {}, m.title || m.label),
      svg("line", { x1: x(m.t), x2: x(m.t), y1: top - 4, y2: ht - bottom }), label));
  });
  return chart;
}

function legend(items) {
  return h("div", { class: "legend" }, items.map(([cls, text]) => h("span", {}, h("i", { class: cls }), text)));
}

function drawWindow() {
  const box = document.getElementById("window");
  box.replaceChildren(...[1, 3, 24, 72].map((n) => h("button", {
    class: n === page.hours ? "on" : null,
    onclick: () => { page.hours = n; stopTimers(); refreshApp(); followLogs(); if (page.output && !page.output.finished) followOutput(page.app, page.output); },
  }, n + " h")));
}

// Deployments, restarts and scale as marks over the charts: deployments from their
// records, the others from the timeline.
function marksOf(view, timeline) {
  const deploys = view.deployments.filter((d) => d.statuses.length && d.statuses[d.statuses.length - 1].status !== "building")
    .map((d) => {
      const end = d.statuses[d.statuses.length - 1];
      const ok = end.status === "success";
      return { t: end.at, kind: ok ? "deploy" : "failed", label: ok && d.release ? "v" + d.release : "✕",
        title: "deployment " + d.id + ": " + end.status + " at " + clock(end.at) };
    });
  const others = timeline.filter((e) => e.type === "restart" || e.type === "scale").map((e) => ({
    t: Date.parse(e.created_at), kind: e.type, label: e.type,
    title: e.type + " at " + clock(Date.parse(e.created_at)) + ": " + e.detail,
  }));
  return deploys.concat(others);
}

function drawTimeline(timeline) {
  const box = document.getElementById("timeline");
  if (timeline.length === 0) {
    box.replaceChildren(h("p", { class: "empty" }, "No event yet: deployments, restarts, scale, crashes and config changes appear here."));
    return;
  }
  box.replaceChildren(h("ul", {}, timeline.slice(0, 60).map((e) => {
    const t = Date.parse(e.created_at);
    return h("li", { "data-event": e.type },
      h("span", { class: "when", title: e.created_at }, clock(t) + " · " + ago(t)),
      h("span", { class: "kind " + e.type }, e.type.replace(/_/g, " ")),
      h("span", { class: "detail" }, e.detail));
  })));
}

function drawMetrics(view, m, timeline) {
  const to = Date.parse(m.measured_at);
  const from = to - page.hours * 3600000;
  const minutes = m.minutes.map((x) => Object.assign({ t: Date.parse(x.minute_at) }, x));
  const marks = marksOf(view, timeline);
  const requests = document.getElementById("requests");
  const times = document.getElementById("times");
  document.getElementById("requests-note").textContent =
    m.requests + " requests, " + m["5xx"] + " 5xx, " + m.requests_per_minute.toFixed(1) + "/min lately";
  const p = m.response_time_ms;
  document.getElementById("times-note").textContent = p
    ? "p50 " + ms(p.p50) + " · p95 " + ms(p.p95) + " · p99 " + ms(p.p99) : "";
  if (minutes.length === 0) {
    const none = "No request reached the router in the last " + (page.hours === 1 ? "hour" : page.hours + " hours") + ".";
    requests.replaceChildren(h("p", { class: "empty" }, none));
    times.replaceChildren(h("p", { class: "empty" }, none));
    return;
  }
  requests.replaceChildren(timeChart({
    from, to, marks, format: (v) => String(Math.round(v)),
    bars: minutes.map((x) => ({ t: x.t, value: x.requests, part: x["5xx"],
      title: clock(x.t) + ": " + x.requests + " requests, " + x["5xx"] + " 5xx" })),
    lines: [],
  }), legend([["ok", "requests"], ["err", "5xx"], ["deploy", "deployment"], ["restart", "restart"], ["scale", "scale"]]));
  const timed = minutes.filter((x) => x.response_time_ms);
  times.replaceChildren(timeChart({
    from, to, marks, format: ms, bars: [],
    lines: ["p50", "p95", "p99"].map((q) => ({ cls: q, points: timed.map((x) => [x.t, x.response_time_ms[q]]) })),
  }), legend([["p50", "median"], ["p95", "p95"], ["p99", "p99"], ["deploy", "deployment"], ["restart", "restart"], ["scale", "scale"]]));
}

// Each container's memory since the dashboard started, its size's limit dashed.
function drawMemory(view, s, timeline, to) {
  const box = document.getElementById("memory");
  const note = document.getElementById("memory-note");
  if (s.stats.unmeasured) {
    note.textContent = "";
    box.replaceChildren(h("p", { class: "empty" }, "Not measured on this machine: " + s.stats.unmeasured));
    return;
  }
  const names = Object.keys(s.memory).filter((n) => s.memory[n].length > 0);
  const limits = s.stats.containers.map((c) => c.memory_limit_bytes).filter((l) => l);
  const limit = limits.length ? Math.max(...limits) : null;
  note.textContent = limit ? "limit " + bytes(limit) : "";
  if (names.length === 0) {
    box.replaceChildren(h("p", { class: "empty" }, "No container measured yet: the dashboard measures every 5 s from its start."));
    return;
  }
  const from = to - page.hours * 3600000;
  // The limit is a line across the window, drawn only when the memory comes near it.
  const highest = Math.max(...names.flatMap((n) => s.memory[n].map((p) => p.memory_bytes)));
  const lines = names.map((n, i) => ({ cls: "c" + (i % 6), gap: 15000,
    points: s.memory[n].map((p) => [p.at_ms, p.memory_bytes]) }));
  if (limit && highest > limit / 4) lines.push({ cls: "limit", gap: Infinity, points: [[from, limit], [to, limit]] });
  box.replaceChildren(timeChart({ from, to, marks: marksOf(view, timeline), format: bytes, bars: [], lines, raw: true, width: 1120,
    round: (v) => nice(v / 1048576) * 1048576 }),
    legend(names.map((n, i) => ["c" + (i % 6), n]).concat(lines.length > names.length ? [["limit", "limit"]] : [])));
}

function ms(v) {
  if (v < 10) return (Math.round(v * 10) / 10) + " ms";
  if (v < 1000) return Math.round(v) + " ms";
  return (v / 1000).toFixed(1) + " s";
}

// --- live output -----------------------------------------------------------

function chooseDeployment(id, byUser) {
  page.deployment = id;
  page.chosenByUser = page.chosenByUser || byUser;
  page.output = { id: id, next: 0, finished: false };
  document.getElementById("output").replaceChildren();
  document.querySelectorAll("tr[data-deployment]").forEach((tr) =>
    tr.classList.toggle("chosen", tr.getAttribute("data-deployment") === id));
  followOutput(page.app, page.output);
}

async function followOutput(app, output) {
  if (app !== page.app || output !== page.output) return;
  let part;
  try {
    part = await get("/api/apps/" + app + "/deployments/" + output.id + "/output?from=" + output.next);
  } catch (e) {
    return;
  }
  if (app !== page.app || output !== page.output) return;
  output.next = part.next;
  output.finished = part.finished;
  append(document.getElementById("output"), part.text, Infinity);
  document.getElementById("output-title").replaceChildren("Output of deployment ", h("span", { class: "mono" }, output.id),
    part.finished ? pill(part.status) : pill(part.status + " · live", "live"));
  if (!part.finished) later(() => followOutput(app, output), LOG_REFRESH_MS);
}

async function followLogs() {
  const app = page.app;
  let part;
  try {
    part = await get("/api/apps/" + app + "/logs" + (page.logNext === null ? "" : "?from=" + page.logNext));
  } catch (e) {
    later(followLogs, LOG_REFRESH_MS * 2);
    return;
  }
  if (app !== page.app) return;
  page.logNext = part.next;
  append(document.getElementById("logs"), part.text, LOG_KEEP_LINES);
  later(followLogs, LOG_REFRESH_MS);
}

// Add lines to a log pane, keeping at most `keep`, and stay at the bottom if it was.
function append(pre, text, keep) {
  if (!text) return;
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 30;
  for (const raw of text.split("\n")) {
    if (raw === "") continue;
    pre.append(line(plain(raw)));
  }
  while (pre.childNodes.length > keep) pre.firstChild.remove();
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

// One line, its parts coloured: a build step, an error, a time and [container] prefix.
function line(text) {
  const div = h("div", {});
  const m = text.match(/^(\S+Z) (\[[^\]]+\]) (.*)$/);
  if (m) {
    div.append(h("span", { class: "when" }, m[1].slice(11, 19) + " "),
      h("span", { class: m[2] === "[platform]" ? "plat" : "step" }, m[2] + " "), m[3]);
    return div;
  }
  if (text.startsWith("----->")) div.className = "step";
  else if (text.startsWith(" !")) div.className = "fail";
  div.textContent = text;
  return div;
}

document.addEventListener("DOMContentLoaded", show);
