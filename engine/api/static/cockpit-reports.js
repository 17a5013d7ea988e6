// The Cockpit's reports (S10.5), beside cockpit.js and on its helpers ($, el, api, state). One
// row per follower for a trading day (the day ending at the 17:00 America/Chicago reset; empty:
// the current one): its copies (filled of sent), skips, rejections, copy latency from the
// leader fill's arrival to the copy sent and to its first fill (p50 / p95 / max), slippage in
// ticks against the leader's price (per contract on average, and the worst fill; adverse
// positive), drift episodes and missed copies. Read when the Cockpit opens, when the day is
// changed, and every REPORT_MS.
"use strict";

const REPORT_MS = 15000;
const reportState = { timer: null, loading: false };

// --- values: the API's figures to words --------------------------------------------------------

// A latency in ms as people read it: "0.4 ms", "35 ms", "1.20 s"; none measured: "–".
function msText(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${Number(ms.toFixed(1))} ms`;
}

// "p50 / p95 / max" of one latency.
function latencyText(latency) {
  if (!latency || !latency.count) return "–";
  return `${msText(latency.p50_ms)} / ${msText(latency.p95_ms)} / ${msText(latency.max_ms)}`;
}

// Ticks as the API sends them ("1.25", "-0.50"), signed: "+1.25", "-0.50", "0.00".
function ticksText(ticks) {
  if (ticks === null || ticks === undefined) return "–";
  return Number(ticks) > 0 ? `+${ticks}` : ticks;
}

// Whether a follower's day asks for a look: a rejection, a missed copy or a drift episode.
function dayStanding(day) {
  if (day.missed_copies || day.drift_episodes) return "near";
  if (day.rejections) return "near";
  return "ok";
}

// --- the view ----------------------------------------------------------------------------------

function count(value, title) {
  return el("td", { class: value ? "num" : "num muted", title, text: String(value) });
}

function reportRow(day) {
  const slip = day.slippage;
  return el("tr", { dataAccount: day.account, dataStanding: dayStanding(day) },
    el("td", { text: day.account }),
    el("td", { class: day.group ? null : "muted", text: day.group || "–" }),
    el("td", { class: "num", title: "copy and mirror orders filled, of those sent", text: `${day.filled} / ${day.copies}` }),
    count(day.skips, "copies skipped"),
    count(day.rejections, "orders refused by the risk gate or the broker"),
    el("td", { class: "num", title: `${day.to_order.count} copies measured`, text: latencyText(day.to_order) }),
    el("td", { class: "num", title: `${day.to_fill.count} copies measured`, text: latencyText(day.to_fill) }),
    el("td", { class: "num", title: `${slip.fills} fills, ${slip.contracts} contracts`, text: `${ticksText(slip.mean_ticks)} / ${ticksText(slip.worst_ticks)}` }),
    count(day.drift_episodes, "drift episodes opened (S10.1)"),
    count(day.missed_copies, "copies not filled in time (S10.3)"),
  );
}

function renderReport(report) {
  $("#report-day-shown").textContent = `${report.day} · ${chicagoText(report.start)} to ${chicagoText(report.end)}`;
  const rows = report.followers.map(reportRow);
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 10, class: "muted", text: "No follower." })));
  $("#report tbody").replaceChildren(...rows);
  $("#report-error").textContent = "";
}

async function loadReport() {
  if (!state.token || reportState.loading) return;
  reportState.loading = true;
  const day = $("#report-day").value;
  try {
    const report = day ? await api("GET", `/api/reports?day=${enc(day)}`) : await api("GET", "/api/reports");
    renderReport(report);
  } catch (error) {
    if (error.status !== 401) $("#report-error").textContent = error.message;
  } finally {
    reportState.loading = false;
  }
}

function bindReports() {
  $("#report-day").addEventListener("change", loadReport);
  $("#report-refresh").addEventListener("click", loadReport);
  // Once the Cockpit shows (a token accepted), and every REPORT_MS while it does.
  const watch = () => { if (!$("#cockpit").hidden) loadReport(); };
  new MutationObserver(watch).observe($("#cockpit"), { attributes: true, attributeFilter: ["hidden"] });
  reportState.timer = setInterval(watch, REPORT_MS);
}

if (typeof document !== "undefined") document.addEventListener("DOMContentLoaded", bindReports);

// For the tests of the page's logic under node (no browser has `module`).
if (typeof module !== "undefined") {
  module.exports = { dayStanding, latencyText, msText, ticksText };
}
