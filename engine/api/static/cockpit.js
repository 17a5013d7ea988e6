// The Cockpit: one page on the engine's control API. No build step, no dependency.
//
// The token comes from the URL the engine printed (#token=...) or from the login form, and is
// kept in this browser's localStorage for this origin. Every call sends it as a bearer token;
// the live event stream is read with fetch (EventSource cannot send headers). The page asks
// for confirmation before every command that closes positions or removes something, and shows
// the cascade a delete would cause (the API itself is immediate, as the help article says).
"use strict";

const TOKEN_KEY = "mimik.token";
const POLL_MS = 2000;
const FEED_MAX = 200;
const state = { token: null, lastEventId: null, refreshTimer: null, streamAbort: null, poller: null };

// --- small helpers -----------------------------------------------------------------------------

function $(selector, root = document) { return root.querySelector(selector); }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data")) node.setAttribute(key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function money(text) {
  const value = Number(text);
  const cls = value > 0 ? "gain" : value < 0 ? "loss" : "flat";
  return el("span", { class: cls, text: value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }) });
}

function positionsText(positions) {
  const entries = Object.entries(positions || {});
  if (!entries.length) return "flat";
  return entries.map(([symbol, qty]) => `${qty > 0 ? "+" : ""}${qty} ${symbol}`).join(", ");
}

function notice(text, bad = false) {
  const node = $("#notice");
  node.textContent = text;
  node.classList.toggle("bad", bad);
  node.hidden = !text;
  if (text) setTimeout(() => { if (node.textContent === text) node.hidden = true; }, 6000);
}

// --- the API -----------------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  const text = await response.text();
  if (text) { try { data = JSON.parse(text); } catch { data = { message: text }; } }
  if (response.status === 401) { showLogin("The token was refused."); throw new ApiFailure(401, data); }
  if (!response.ok) throw new ApiFailure(response.status, data);
  return data;
}

async function command(method, path, body, done) {
  try {
    const result = await api(method, path, body);
    notice(done || (result && result.message) || "done");
    scheduleRefresh(100);
    return result;
  } catch (error) {
    if (error.status !== 401) notice(error.message, true);
    return null;
  }
}

// --- confirmation and edit dialogs -------------------------------------------------------------

function confirmDialog(title, body) {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  const holder = $("#confirm-body");
  holder.replaceChildren(...(Array.isArray(body) ? body : [body]));
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

function listOf(title, items) {
  if (!items.length) return null;
  return el("div", {}, el("strong", { text: title }), el("ul", {}, items.map((t) => el("li", { text: t }))));
}

async function confirmDelete(kind, id, path) {
  let plan;
  try { plan = await api("DELETE", `${path}?dry_run=true`); } catch (error) { notice(error.message, true); return; }
  const parts = [el("p", { text: "Deleting is immediate. No order is sent: open positions stay as they are — flatten first if you want them closed." })];
  if (kind === "connection") {
    parts.push(listOf("Accounts deleted", plan.accounts));
  }
  parts.push(listOf("Copy groups removed (whole)", plan.groups || []));
  parts.push(listOf("Memberships removed", (plan.memberships || []).map((m) => `${m.account} from group ${m.group}`)));
  parts.push(listOf("Followers left without a group", (plan.orphaned_followers || []).map((m) => `${m.account} (was in ${m.group})`)));
  if (kind === "group") parts.push(listOf("Followers left without a group", plan.followers || []));
  const ok = await confirmDialog(`Delete ${kind} ${id}?`, parts.filter(Boolean));
  if (ok) await command("DELETE", path, undefined, `${kind} ${id} deleted`);
}

function editDialog(title, fields) {
  const dialog = $("#edit");
  $("#edit-title").textContent = title;
  $("#edit-error").textContent = "";
  const inputs = fields.map((f) => el("input", { name: f.name, value: f.value ?? "", placeholder: f.placeholder || "" }));
  $("#edit-fields").replaceChildren(...fields.map((f, i) => el("label", {}, f.label, inputs[i])));
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") return resolve(null);
      const out = {};
      inputs.forEach((input) => { out[input.name] = input.value.trim(); });
      resolve(out);
    }, { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

function parseSymbolMap(text) {
  const out = {};
  for (const pair of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [from, to] = pair.split(/\s*(?:→|->|=|:)\s*/);
    if (from && to) out[from.toUpperCase()] = to.toUpperCase();
  }
  return out;
}

function symbolMapText(map) {
  return Object.entries(map || {}).map(([a, b]) => `${a}→${b}`).join(", ");
}

// --- rendering ---------------------------------------------------------------------------------

function renderConnections(connections) {
  const rows = connections.map((c) => el("tr", { dataConnection: c.id },
    el("td", { text: c.id }),
    el("td", { text: c.broker }),
    el("td", {}, el("span", { class: "badge state", dataState: c.state, text: c.offline ? "offline" : c.state })),
    el("td", { text: c.accounts.join(", ") || "—" }),
    el("td", { class: "actions" },
      el("button", { class: c.state === "reauth_required" ? "primary" : "", dataAction: "reauthorize", text: "Re-authorize", onclick: () => reauthorize(c.id) }),
      " ",
      c.state === "disconnected"
        ? el("button", { dataAction: "reconnect", text: "Reconnect", onclick: () => command("POST", `/api/connections/${enc(c.id)}/reconnect`) })
        : el("button", { dataAction: "offline", text: "Take offline", onclick: () => command("POST", `/api/connections/${enc(c.id)}/offline`) }),
      " ",
      el("button", { class: "danger", dataAction: "delete-connection", text: "Delete", onclick: () => confirmDelete("connection", c.id, `/api/connections/${enc(c.id)}`) }),
    )));
  $("#connections tbody").replaceChildren(...rows);
}

function renderAccounts(accounts) {
  const rows = accounts.map((a) => {
    const locked = a.risk_status !== "OK" || a.lock_reason;
    return el("tr", { dataAccount: a.id },
      el("td", { text: a.id }),
      el("td", { text: a.connection }),
      el("td", { class: "pos" + (Object.keys(a.positions).length ? "" : " flat"), dataPosition: positionsText(a.positions), text: positionsText(a.positions) }),
      el("td", { class: "num" }, money(a.daily_pnl)),
      el("td", { class: "num" }, money(a.weekly_pnl)),
      el("td", { class: "num" }, money(a.equity)),
      el("td", {}, el("span", { class: "badge risk", dataState: a.risk_status, text: a.risk_status })),
      el("td", { class: "lock-reason", text: a.lock_reason || "—" }),
      el("td", { class: "copying", text: a.copying }),
      el("td", { class: "actions" },
        el("button", { class: "danger", dataAction: "flatten-account", text: "Flatten", onclick: () => flattenAccount(a.id) }),
        " ",
        locked
          ? el("button", { dataAction: "unlock", text: "Unlock", onclick: () => command("POST", `/api/accounts/${enc(a.id)}/unlock`) })
          : el("button", { dataAction: "lock", text: "Lock", onclick: () => lockAccount(a) }),
        " ",
        el("button", { dataAction: "limits", text: "Limits", onclick: () => editLimits(a) }),
        " ",
        el("button", { class: "danger", dataAction: "delete-account", text: "Delete", onclick: () => confirmDelete("account", a.id, `/api/accounts/${enc(a.id)}`) }),
      ));
  });
  $("#accounts tbody").replaceChildren(...rows);
}

function renderGroups(groups) {
  const cards = groups.map((g) => el("div", { class: "group", dataGroup: g.id },
    el("div", { class: "group-head" },
      el("span", { class: "title", text: `${g.id}` }),
      el("span", { class: "muted", text: `leader ${g.leader} · ${positionsText(g.leader_positions)}` }),
      el("div", { class: "spacer" }),
      el("button", { dataAction: "add-follower", text: "Add follower", onclick: () => addFollower(g.id) }),
      el("button", { class: "danger", dataAction: "flatten-group", dataGroup: g.id, text: "Flatten Group", onclick: () => flattenGroup(g) }),
      el("button", { class: "danger", dataAction: "delete-group", text: "Delete group", onclick: () => confirmDelete("group", g.id, `/api/groups/${enc(g.id)}`) }),
    ),
    g.followers.length
      ? el("table", {},
        el("thead", {}, el("tr", {}, ["Follower", "Ratio", "Max qty", "Symbol map", "Disabled", ""].map((h) => el("th", { text: h })))),
        el("tbody", {}, g.followers.map((f) => el("tr", { dataFollower: f.account },
          el("td", { text: f.account }),
          el("td", { text: f.ratio }),
          el("td", { text: f.max_qty ?? "—" }),
          el("td", { text: symbolMapText(f.symbol_map) || "—" }),
          el("td", { text: f.disable_reason || "—" }),
          el("td", { class: "actions" },
            el("button", { dataAction: "edit-follower", text: "Edit", onclick: () => editFollower(g.id, f) }),
            " ",
            el("button", { class: "danger", dataAction: "remove-follower", text: "Remove", onclick: () => removeFollower(g.id, f.account) }),
          )))))
      : el("p", { class: "muted", text: "No followers." }),
  ));
  $("#groups").replaceChildren(...(cards.length ? cards : [el("p", { class: "muted", text: "No copy groups." })]));
}

function feedItem(kind, data, fresh) {
  const time = (data.time || new Date().toISOString()).slice(11, 19);
  let label, text, level = data.level || "info";
  if (kind === "activity") {
    label = data.kind;
    text = `${data.account || data.connection || "engine"}: ${data.message}`;
  } else if (kind === "fill") {
    label = "fill";
    text = `${data.account} ${data.qty > 0 ? "+" : ""}${data.qty} ${data.symbol} @ ${data.price}`;
  } else if (kind === "order") {
    label = `order (${data.kind})`;
    text = `${data.account} ${data.order_type === "liquidate" ? "liquidate" : (data.qty > 0 ? "+" : "") + data.qty} ${data.symbol} — ${data.cause}`;
  } else {
    return null;
  }
  return el("li", { class: fresh ? "fresh" : "", dataKind: label, dataLevel: level },
    el("span", { class: "t", text: time }), el("span", { class: "k", text: label }), el("span", { class: "m", text }));
}

function prependFeed(node) {
  if (!node) return;
  const list = $("#activity");
  list.prepend(node);
  while (list.children.length > FEED_MAX) list.lastChild.remove();
}

// --- actions -----------------------------------------------------------------------------------

function enc(id) { return encodeURIComponent(id); }

async function reauthorize(connection) {
  try {
    const answer = await api("POST", `/api/connections/${enc(connection)}/reauthorize`);
    window.location.assign(answer.authorize_url);
  } catch (error) {
    if (error.status !== 401) notice(error.message, true);
  }
}

async function flattenAccount(account) {
  if (await confirmDialog(`Flatten ${account}?`, el("p", { text: "Liquidate every position of this account and cancel its working orders. Its risk status does not change." }))) {
    await command("POST", `/api/accounts/${enc(account)}/flatten`);
  }
}

async function flattenGroup(group) {
  const who = [group.leader, ...group.followers.map((f) => f.account)];
  if (await confirmDialog(`Flatten group ${group.id}?`, [el("p", { text: "Liquidate every position and cancel working orders of:" }), el("ul", {}, who.map((a) => el("li", { text: a })))])) {
    await command("POST", `/api/groups/${enc(group.id)}/flatten`);
  }
}

async function flattenAll() {
  if (await confirmDialog("Flatten All?", el("p", { text: "Liquidate every position of every account and cancel every working order. Risk statuses do not change." }))) {
    await command("POST", "/api/flatten");
  }
}

async function lockAccount(account) {
  const open = Object.keys(account.positions).length > 0;
  const text = open
    ? "The account holds positions: they are liquidated first (LIQUIDATE_ONLY), then it is LOCKED. Only a manual unlock releases it."
    : "The account is flat: it becomes LOCKED at once. Only a manual unlock releases it.";
  if (await confirmDialog(`Lock ${account.id}?`, el("p", { text }))) {
    await command("POST", `/api/accounts/${enc(account.id)}/lock`);
  }
}

const LIMIT_NAMES = ["daily_loss_limit", "daily_profit_target", "trailing_drawdown", "weekly_loss_limit", "weekly_profit_target"];

async function editLimits(account) {
  const values = await editDialog(`Risk limits of ${account.id} (0 switches one off)`,
    LIMIT_NAMES.map((name) => ({ name, label: name.replaceAll("_", " "), value: account.limits[name] ?? "" })));
  if (!values) return;
  const body = {};
  for (const name of LIMIT_NAMES) {
    if (values[name] !== "" && values[name] !== (account.limits[name] ?? "")) body[name] = values[name];
  }
  if (Object.keys(body).length) await command("PUT", `/api/accounts/${enc(account.id)}/limits`, body, "limits saved");
}

async function addFollower(group) {
  const values = await editDialog(`Add a follower to ${group}`, [
    { name: "account", label: "Account" },
    { name: "ratio", label: "Ratio", value: "1" },
    { name: "max_qty", label: "Max qty (empty: no cap)" },
    { name: "symbol_map", label: "Symbol map (e.g. ES→MES)" },
  ]);
  if (!values) return;
  const body = { account: values.account, ratio: values.ratio || "1", symbol_map: parseSymbolMap(values.symbol_map) };
  if (values.max_qty) body.max_qty = Number(values.max_qty);
  await command("POST", `/api/groups/${enc(group)}/followers`, body, `${values.account} follows ${group}`);
}

async function editFollower(group, follower) {
  const values = await editDialog(`${follower.account} in ${group}`, [
    { name: "ratio", label: "Ratio", value: follower.ratio },
    { name: "max_qty", label: "Max qty (empty: no cap)", value: follower.max_qty ?? "" },
    { name: "symbol_map", label: "Symbol map (e.g. ES→MES)", value: symbolMapText(follower.symbol_map) },
  ]);
  if (!values) return;
  const body = { ratio: values.ratio, symbol_map: parseSymbolMap(values.symbol_map) };
  if (values.max_qty) body.max_qty = Number(values.max_qty); else body.clear_max_qty = true;
  await command("PATCH", `/api/groups/${enc(group)}/followers/${enc(follower.account)}`, body, "terms saved");
}

async function removeFollower(group, account) {
  if (await confirmDialog(`Remove ${account} from ${group}?`, el("p", { text: "It stops copying; its positions stay as they are." }))) {
    await command("DELETE", `/api/groups/${enc(group)}/followers/${enc(account)}`);
  }
}

// --- refresh and the live stream ---------------------------------------------------------------

async function refresh() {
  try {
    const [status, connections, accounts, groups] = await Promise.all([
      api("GET", "/api/status"), api("GET", "/api/connections"), api("GET", "/api/accounts"), api("GET", "/api/groups"),
    ]);
    renderBrokers(status.brokers);
    renderConnections(connections);
    renderAccounts(accounts);
    renderGroups(groups);
    $("#clock").textContent = `engine ${status.version} · ${status.now.slice(0, 19).replace("T", " ")} UTC`;
    setStatus(status.stopping ? "down" : "live", status.stopping ? "stopping" : "live");
  } catch (error) {
    if (error.status !== 401) setStatus("down", "engine unreachable");
  }
}

// The brokers this engine runs (paper, tradovate, tradovate-sim), for "Add a connection".
function renderBrokers(brokers) {
  const select = $("#add-connection select[name=broker]");
  if (Array.from(select.options, (o) => o.value).join() === brokers.join()) return;
  const chosen = select.value;
  select.replaceChildren(...brokers.map((b) => el("option", { value: b, text: b })));
  if (brokers.includes(chosen)) select.value = chosen;
}

function scheduleRefresh(delay = 250) {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => { state.refreshTimer = null; refresh(); }, delay);
}

function setStatus(kind, text) {
  const pill = $("#engine-status");
  pill.dataset.state = kind;
  pill.textContent = text;
}

async function loadActivity() {
  const page = await api("GET", "/api/activity?limit=50");
  $("#activity").replaceChildren(...page.items.map((item) => feedItem("activity", item, false)));
}

function handleEvent(kind, data) {
  prependFeed(feedItem(kind, data, true));
  scheduleRefresh();
}

async function stream() {
  while (state.token) {
    const controller = new AbortController();
    state.streamAbort = controller;
    try {
      const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      const response = await fetch("/api/events", { headers, signal: controller.signal });
      if (response.status === 401) { showLogin("The token was refused."); return; }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      $("#stream-state").textContent = "(live)";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let kind = "message", data = "", id = null;
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) kind = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
            else if (line.startsWith("id:")) id = line.slice(3).trim();
          }
          if (id) state.lastEventId = id;
          if (data) { try { handleEvent(kind, JSON.parse(data)); } catch { /* a malformed event is skipped */ } }
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    $("#stream-state").textContent = "(reconnecting…)";
    setStatus("down", "engine unreachable");
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

// --- start -------------------------------------------------------------------------------------

function showLogin(message) {
  state.token = null;
  localStorage.removeItem(TOKEN_KEY);
  if (state.streamAbort) state.streamAbort.abort();
  $("#cockpit").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  setStatus("down", "no token");
}

async function start(token) {
  state.token = token;
  localStorage.setItem(TOKEN_KEY, token);
  $("#login").hidden = true;
  $("#cockpit").hidden = false;
  await refresh();
  if (!state.token) return;
  try { await loadActivity(); } catch { /* the stream fills it */ }
  stream();
  if (!state.poller) state.poller = setInterval(() => { if (state.token) refresh(); }, POLL_MS);
}

function tokenFromUrl() {
  const match = window.location.hash.match(/token=([^&]+)/);
  if (!match) return null;
  history.replaceState(null, "", window.location.pathname + window.location.search);
  return decodeURIComponent(match[1]);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#flatten-all").addEventListener("click", flattenAll);
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    start($("#login-token").value.trim());
  });
  $("#add-connection").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const accounts = String(form.get("accounts") || "").split(",").map((s) => s.trim()).filter(Boolean).map((id) => ({ id }));
    const done = await command("POST", "/api/connections", { id: form.get("id"), broker: form.get("broker"), accounts }, `connection ${form.get("id")} added`);
    if (done) event.target.reset();
  });
  $("#add-group").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const done = await command("POST", "/api/groups", { id: form.get("id"), leader: form.get("leader"), followers: [] }, `group ${form.get("id")} created`);
    if (done) event.target.reset();
  });
  const token = tokenFromUrl() || localStorage.getItem(TOKEN_KEY);
  if (token) start(token); else showLogin();
});
