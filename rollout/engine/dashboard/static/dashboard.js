// The rollout dashboard: a list of releases and a page per release, refreshed every second from
// /api. Every piece of text from the cluster is set as textContent, never parsed as HTML.
"use strict";

const REFRESH_MS = 1000;
const app = document.getElementById("app");
let timer = null;
let state = { readOnly: true };

function h(tag, attrs, ...children) {
  const svg = ["svg", "path", "line", "polyline", "text", "circle", "rect", "g"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
}

function clock(iso) {
  if (!iso) return "—";
  const d = new Date(typeof iso === "number" ? iso * 1000 : iso);
  return d.toISOString().slice(11, 19);
}

function num(x) {
  return typeof x === "number" ? (Math.abs(x) < 1e6 ? Number(x.toPrecision(4)).toString() : x.toExponential(3)) : "—";
}

function releasePath(r) {
  return `${encodeURIComponent(r.kind)}/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.name)}`;
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`${response.status} ${(await response.json().catch(() => ({}))).error || ""}`);
  return response.json();
}

function header(data) {
  document.getElementById("mode").textContent = data.readOnly ? "read-only" : "";
  document.getElementById("reports-link").hidden = !data.reports;
}

function revertText(revert) {
  if (!revert) return "—";
  return [revert.state, (revert.commit || "").slice(0, 7)].filter(Boolean).join(" ") + (revert.branch ? ` on ${revert.branch}` : "");
}

function phaseCell(r) {
  return h("td", {}, h("span", { class: `phase phase-${r.phase}` }, r.phase || "—"),
    r.problem ? h("div", { class: "problem" }, r.problem) : null);
}

// -- the list ----------------------------------------------------------------------------------------

async function showList() {
  const data = await getJSON("/api/releases");
  state = data;
  header(data);
  const rows = data.releases.map((r) => h("tr", {
    class: "release", "data-release": `${r.namespace}/${r.name}`, "data-kind": r.kind,
    onclick: () => { location.hash = `#/release/${releasePath(r)}`; },
  },
    h("td", {}, r.kind), h("td", {}, r.namespace), h("td", {}, h("a", { href: `#/release/${releasePath(r)}` }, r.name)),
    phaseCell(r),
    h("td", { class: "weight num" }, h("span", { class: "bar" }, h("span", { style: `width:${r.weight}%` })), `${r.weight}%`),
    h("td", { class: "num" }, `${r.failedChecks}/${r.threshold}`),
    h("td", {}, r.lastCheck ? [clock(r.lastCheck.at), " ", h("span", { class: r.lastCheck.verdict }, r.lastCheck.verdict)] : "—"),
    h("td", {}, h("code", {}, (r.revision || "—").slice(0, 12))),
    h("td", {}, revertText(r.revert)),
  ));
  fill(app, 
    h("h1", {}, `Releases (${data.releases.length})`),
    data.problem ? h("p", { class: "problem" }, data.problem) : null,
    h("table", { id: "releases" },
      h("thead", {}, h("tr", {}, ["kind", "namespace", "name", "phase", "weight", "failed checks", "last check (UTC)",
        "Git revision", "revert"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No Canary or BlueGreen yet.")))),
  );
}

// -- charts ------------------------------------------------------------------------------------------

const W = 1000, H = 220, PAD = { l: 48, r: 16, t: 12, b: 26 };

function scale(domain, range) {
  const [d0, d1] = domain[0] === domain[1] ? [domain[0] - 1, domain[1] + 1] : domain;
  return (x) => range[0] + ((x - d0) / (d1 - d0)) * (range[1] - range[0]);
}

function axes(x, y, t0, t1, ys, unit) {
  const g = h("g", {});
  for (const v of ys) {
    g.appendChild(h("line", { class: "grid", x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }));
    g.appendChild(h("text", { x: PAD.l - 6, y: y(v) + 4, "text-anchor": "end" }, `${num(v)}${unit || ""}`));
  }
  const n = 6;
  for (let i = 0; i <= n; i++) {
    const t = t0 + ((t1 - t0) * i) / n;
    g.appendChild(h("text", { x: x(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === n ? "end" : "middle" }, clock(t)));
  }
  return g;
}

function ticks(lo, hi, n) {
  if (lo === hi) return [lo];
  return Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
}

function path(points, x, y, step) {
  let d = "";
  let last = null;
  for (const [t, v] of points) {
    if (v === null || v === undefined || !isFinite(v)) { last = null; continue; }
    if (last === null) d += `M${x(t)},${y(v)}`;
    else if (step) d += `H${x(t)}V${y(v)}`;
    else d += `L${x(t)},${y(v)}`;
    last = v;
  }
  return d;
}

function weightChart(weights, now) {
  if (!weights.length) return h("p", { class: "muted" }, "No weight seen yet.");
  const t0 = weights[0][0], t1 = Math.max(now, t0 + 1);
  const x = scale([t0, t1], [PAD.l, W - PAD.r]), y = scale([0, 100], [H - PAD.b, PAD.t]);
  const points = [...weights.map(([t, w]) => [t, w]), [t1, weights[weights.length - 1][1]]];
  return h("svg", { class: "chart", id: "weight-chart", viewBox: `0 0 ${W} ${H}` },
    axes(x, y, t0, t1, [0, 25, 50, 75, 100], "%"),
    h("path", { d: path(points, x, y, true), fill: "none", stroke: "var(--weight)", "stroke-width": 2.5 }));
}

function metricChart(name, checks, limit, span) {
  const rows = checks.map((c) => ({ t: Date.parse(c.at) / 1000, m: c.metrics.find((m) => m.name === name) }))
    .filter((r) => r.m);
  if (!rows.length) return h("p", { class: "muted" }, "No check yet.");
  const values = rows.flatMap((r) => [r.m.value, r.m.primary]).filter((v) => typeof v === "number");
  for (const b of [limit && limit.min, limit && limit.max]) if (typeof b === "number") values.push(b);
  const lo = values.length ? Math.min(...values) : 0, hi = values.length ? Math.max(...values) : 1;
  const pad = (hi - lo) * 0.1 || 1;
  // The weight chart's time span, so that a check lines up with the step it judged.
  const t0 = Math.min(span[0], rows[0].t), t1 = Math.max(span[1], rows[rows.length - 1].t, t0 + 1);
  const x = scale([t0, t1], [PAD.l, W - PAD.r]), y = scale([lo - pad, hi + pad], [H - PAD.b, PAD.t]);
  const svg = h("svg", { class: "chart metric-chart", "data-metric": name, viewBox: `0 0 ${W} ${H}` },
    axes(x, y, t0, t1, ticks(lo - pad, hi + pad, 4), ""));
  for (const b of [limit && limit.min, limit && limit.max]) {
    if (typeof b === "number") svg.appendChild(h("line", { x1: PAD.l, x2: W - PAD.r, y1: y(b), y2: y(b), stroke: "#555", "stroke-dasharray": "6 4" }));
  }
  svg.appendChild(h("path", { d: path(rows.map((r) => [r.t, r.m.primary]), x, y), fill: "none", stroke: "var(--primary)", "stroke-width": 2 }));
  svg.appendChild(h("path", { d: path(rows.map((r) => [r.t, r.m.value]), x, y), fill: "none", stroke: "var(--canary)", "stroke-width": 2 }));
  for (const r of rows) {
    if (typeof r.m.value !== "number") continue;
    const colour = r.m.verdict === "pass" ? "var(--pass)" : r.m.verdict === "fail" ? "var(--fail)" : "var(--nodata)";
    svg.appendChild(h("circle", { cx: x(r.t), cy: y(r.m.value), r: 4, fill: colour }));
  }
  return svg;
}

// -- one release -------------------------------------------------------------------------------------

async function command(r, name) {
  if (!window.confirm(`${name} ${r.kind} ${r.namespace}/${r.name}?`)) return;
  const notice = document.getElementById("notice");
  const response = await fetch(`/api/releases/${releasePath(r)}/${name}`, {
    method: "POST", headers: { "X-Rollout-Dashboard": "1", "Content-Type": "application/json" }, body: "{}",
  });
  const body = await response.json().catch(() => ({}));
  notice.textContent = response.ok ? `${name} requested: the operator acts on it at its next tick.` : `${name} refused: ${body.error || response.status}`;
}

async function showRelease(kind, namespace, name) {
  const r = await getJSON(`/api/releases/${encodeURIComponent(kind)}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
  state = r;
  header(r);
  const notice = document.getElementById("notice");
  const kept = notice ? notice.textContent : "";
  const now = Date.now() / 1000;
  // The highest step the current (or last) run reached: its weight drops to 0 when it ends.
  const running = (p) => ["Progressing", "WaitingPromotion", "Promoting", "Finalising"].includes(p);
  const points = r.timeline.weights;
  let started = 0;
  for (let i = 1; i < points.length; i++) if (running(points[i][2]) && !running(points[i - 1][2])) started = i;
  const reached = Math.max(r.weight, ...points.slice(started).map(([, w]) => w));
  const steps = h("div", { class: "steps", id: "steps" }, r.steps.length ? r.steps.map((w) =>
    h("span", { class: running(r.phase) && w === r.weight ? "now" : w <= reached ? "done" : "" }, `${w}%`)) : h("span", {}, r.iterations ? `${r.iterations} iterations` : "one switch"));
  const phases = [];
  for (const [t, w, p] of r.timeline.weights) {
    if (!phases.length || phases[phases.length - 1].p !== p) phases.push({ t, p, w });
  }
  const limits = r.limits || {};
  const buttons = r.readOnly ? h("p", { class: "muted" }, "Read-only: promote, abort and retry are off.") : h("div", { class: "actions" },
    h("button", { class: "promote", disabled: !["Progressing", "WaitingPromotion", "Waiting"].includes(r.phase), onclick: () => command(r, "promote") }, "Promote"),
    h("button", { class: "abort", disabled: !["Progressing", "WaitingPromotion", "Waiting", "Promoting"].includes(r.phase), onclick: () => command(r, "abort") }, "Abort"),
    h("button", { class: "retry", disabled: !["Failed", "Reverted"].includes(r.phase), onclick: () => command(r, "retry") }, "Retry"));
  fill(app, 
    h("p", {}, h("a", { href: "#/" }, "← all releases")),
    h("h1", {}, `${r.kind} ${r.namespace}/${r.name}`),
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("div", { class: "label" }, "phase"), h("div", { class: `value phase phase-${r.phase}`, id: "phase" }, r.phase || "—")),
      h("div", { class: "card" }, h("div", { class: "label" }, "canary weight"), h("div", { class: "value", id: "weight" }, `${r.weight}%`)),
      h("div", { class: "card" }, h("div", { class: "label" }, "failed checks"), h("div", { class: "value" }, `${r.failedChecks}/${r.threshold}`)),
      h("div", { class: "card" }, h("div", { class: "label" }, "judge, interval"), h("div", { class: "value" }, `${r.judge}, ${r.interval}`)),
      h("div", { class: "card" }, h("div", { class: "label" }, "Git revision"), h("div", { class: "value" }, h("code", {}, (r.revision || "—").slice(0, 12)))),
      h("div", { class: "card" }, h("div", { class: "label" }, "revert"), h("div", { class: "value", id: "revert" }, revertText(r.revert)))),
    r.problem ? h("p", { class: "problem" }, r.problem) : null,
    buttons,
    h("div", { id: "notice" }, kept),
    h("h2", {}, "Steps"), steps,
    h("p", { class: "muted" }, phases.map((p, i) => [i ? " → " : "", `${clock(p.t)} ${p.p || "—"} (${p.w}%)`])),
    h("h2", {}, "Traffic weight to the canary"), weightChart(r.timeline.weights, now),
    r.metrics.map((m) => [
      h("h2", {}, `${m.name}: `, h("span", { class: m.verdict }, m.verdict), m.limit ? ` (limit ${m.limit})` : ""),
      h("div", { class: "legend" }, h("span", {}, h("i", { style: "background:var(--canary)" }), `canary ${num(m.value)}`),
        h("span", {}, h("i", { style: "background:var(--primary)" }), `primary ${num(m.primary)}`),
        h("span", {}, h("i", { style: "background:#555" }), "limit")),
      metricChart(m.name, r.timeline.checks, limits[m.name], [r.timeline.weights.length ? r.timeline.weights[0][0] : now, now]),
    ]),
    h("h2", {}, "Checks"),
    h("table", { id: "checks" }, h("thead", {}, h("tr", {}, ["time (UTC)", "verdict", "weight", "metrics"].map((t) => h("th", {}, t)))),
      h("tbody", {}, r.timeline.checks.slice(-30).reverse().map((c) => h("tr", {},
        h("td", {}, clock(c.at)), h("td", { class: c.verdict }, c.verdict), h("td", { class: "num" }, `${c.weight}%`),
        h("td", {}, c.metrics.map((m) => `${m.name} ${num(m.value)}/${num(m.primary)} ${m.verdict}`).join("; ")))))),
    r.revert ? [h("h2", {}, "Revert in Git"), h("p", {}, h("code", {}, r.revert.commit || "—"), " ", r.revert.message || "")] : null,
    h("h2", {}, "Reports"),
    r.reports.length ? h("ul", { id: "reports" }, r.reports.map((e) => h("li", {},
      `${e.decidedAt || ""} `, h("span", { class: e.outcome === "succeeded" ? "pass" : "fail" }, e.outcome), " ",
      e.html ? h("a", { href: `/reports/${encodeURIComponent(e.stem)}.html` }, "HTML") : null, " ",
      h("a", { href: `/reports/${encodeURIComponent(e.stem)}.json` }, "JSON")))) : h("p", { class: "muted" }, "No report for this release."),
    r.conditions.length ? [h("h2", {}, "Conditions"), h("ul", {}, r.conditions.map((c) =>
      h("li", {}, `${c.type}=${c.status} ${c.reason || ""}${c.message ? ": " + c.message : ""}`)))] : null,
  );
}

// -- routing -----------------------------------------------------------------------------------------

async function render() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "release" && parts.length === 4) await showRelease(parts[1], parts[2], parts[3]);
    else await showList();
  } catch (e) {
    fill(app, h("p", { class: "problem" }, `The dashboard cannot load this: ${e.message}`), h("p", {}, h("a", { href: "#/" }, "all releases")));
  }
}

function loop() {
  clearTimeout(timer);
  render().finally(() => { timer = setTimeout(loop, REFRESH_MS); });
}

window.addEventListener("hashchange", loop);
loop();
