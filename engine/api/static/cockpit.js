// The Cockpit: one page on the engine's control API. No build step, no dependency.
//
// The token comes from the URL the engine printed (#token=...) or from the login form, and is
// kept in this browser's localStorage for this origin. Every call sends it as a bearer token;
// the live event stream is read with fetch (EventSource cannot send headers). The page asks
// for confirmation before every command that closes positions or removes something, and shows
// the cascade a delete would cause (the API itself is immediate, as the help article says).
// Each account row shows its limits and the money left before each, and its prop-firm rules
// (cockpit-rules.js, with the profiles and blackouts views); on a paper-broker engine a desk
// panel trades by hand and sets prices; a follower's Sync shows its orders before sending.
"use strict";

const TOKEN_KEY = "mimik.token";
const POLL_MS = 2000;
const FEED_MAX = 200;
const state = { token: null, lastEventId: null, refreshTimer: null, streamAbort: null, poller: null, desk: false };

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

// --- limits in sight: each limit set and the money left before it (AccountOut.limit_distances) -

const LIMIT_SHORT = {
  daily_loss_limit: "daily loss", daily_profit_target: "daily target", trailing_drawdown: "trailing",
  weekly_loss_limit: "weekly loss", weekly_profit_target: "weekly target",
};
const STANDING_RANK = { ok: 0, off: 0, near: 1, halted: 2, breached: 2 };
const STANDING_WORDS = {
  ok: "more than 20 % of it left",
  near: "near: within 20 % of it",
  breached: "breached: at it or past it",
  halted: "the account is halted (LIQUIDATE_ONLY or LOCKED)",
  off: "off until its reset: unlocked by hand",
};

function amount(text) {
  return Number(text).toLocaleString(undefined, { maximumFractionDigits: 2 });
}

function limitText(d) {
  const left = d.standing === "off" ? "off" : Number(d.distance) <= 0 ? "hit" : `${amount(d.distance)} left`;
  return `${LIMIT_SHORT[d.limit] || d.limit} ${amount(d.value)} · ${left}`;
}

function limitTitle(d) {
  const name = d.limit.replaceAll("_", " ");
  return `${name} ${d.value}: ${d.distance} left before it is hit; ${STANDING_WORDS[d.standing] || d.standing}`;
}

// The worst standing of an account's limits: breached or halted (red) over near (amber).
function worstStanding(distances) {
  let worst = "ok";
  for (const d of distances) if (STANDING_RANK[d.standing] > STANDING_RANK[worst]) worst = d.standing;
  return worst;
}

function limitsCell(account) {
  const distances = account.limit_distances || [];
  if (!distances.length) return el("td", { class: "limits muted", text: "no limits" });
  const parts = [];
  distances.forEach((d, i) => {
    if (i) parts.push(" ");
    parts.push(el("span", { class: "limit", dataLimit: d.limit, dataStanding: d.standing, title: limitTitle(d), text: limitText(d) }));
  });
  return el("td", { class: "limits", dataStanding: worstStanding(distances) }, parts);
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

// options: ok (the confirm button's text), canConfirm (false: nothing to confirm, Close only).
function confirmDialog(title, body, options = {}) {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  const holder = $("#confirm-body");
  holder.replaceChildren(...(Array.isArray(body) ? body : [body]));
  const canConfirm = options.canConfirm !== false;
  $("#confirm-ok").textContent = options.ok || "Confirm";
  $("#confirm-ok").hidden = !canConfirm;
  $("#confirm-cancel").textContent = canConfirm ? "Cancel" : "Close";
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
  // S8.8: a deletion cancels nothing; these stay working at the broker.
  parts.push(listOf("Working orders that stay at the broker (nothing is cancelled)", (plan.working_orders || []).map((o) => `${o.account}: ${orderText(o)}`)));
  const ok = await confirmDialog(`Delete ${kind} ${id}?`, parts.filter(Boolean));
  if (ok) await command("DELETE", path, undefined, `${kind} ${id} deleted`);
}

// fields: name, label, value, placeholder; options ([value, text] pairs) makes a choice of them.
// options: wide (two columns, for many fields).
function editDialog(title, fields, options = {}) {
  const dialog = $("#edit");
  $("#edit-title").textContent = title;
  $("#edit-error").textContent = "";
  const inputs = fields.map((f) => {
    if (!f.options) return el("input", { name: f.name, value: f.value ?? "", placeholder: f.placeholder || "" });
    const select = el("select", { name: f.name }, f.options.map(([value, text]) => el("option", { value, text })));
    select.value = f.value ?? "";
    return select;
  });
  $("#edit-fields").classList.toggle("wide", Boolean(options.wide));
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

// A working order in words (S8): "sell 2 ESZ6 stop 4980 · stop leg · waits for its entry · mirrors 17".
function orderText(o) {
  let kind = o.order_type;
  if ((kind === "stop" || kind === "stop_limit") && o.stop != null) kind = `stop ${o.stop}`;
  if ((o.order_type === "limit" || o.order_type === "stop_limit") && o.price != null) {
    kind = o.order_type === "stop_limit" ? `${kind} limit ${o.price}` : `limit ${o.price}`;
  }
  const notes = [];
  if (o.role) notes.push(`${o.role} leg`);
  if (!o.active) notes.push("waits for its entry");
  if (o.mirrors) notes.push(`mirrors ${o.mirrors}`);
  return [`${o.qty > 0 ? "buy" : "sell"} ${Math.abs(o.qty)} ${o.symbol} ${kind}`, ...notes].join(" · ");
}

// S10.1: a follower's open drift episodes, "ESZ6 -2" (its position minus where its leader puts
// it); a drift inside drift_grace is not in the API's view, so not shown.
function driftText(drift) {
  return Object.entries(drift || {}).map(([symbol, qty]) => `${symbol} ${signed(qty)}`).join(", ");
}

function copyingCell(account) {
  const drift = driftText(account.drift);
  if (!drift) return el("td", { class: "copying", text: account.copying });
  return el("td", { class: "copying" }, account.copying, " ",
    el("span", { class: "drift", title: "drifts from where its leader puts it (S10.1): its position minus the expected one", text: `drift ${drift}` }));
}

function ordersCell(account) {
  const orders = account.orders || [];
  if (!orders.length) return el("td", { class: "orders muted", text: "—" });
  return el("td", { class: "orders" }, el("ul", {}, orders.map((o) => el("li", {
    dataOrder: o.broker_order_id || "",
    dataMirrors: o.mirrors || "",
    class: o.active ? "" : "inactive",
    title: o.mirrors ? `mirrors the leader's order ${o.mirrors}` : "",
    text: orderText(o),
  }))));
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
    const follower = a.membership && a.membership.role === "follower";
    const drifting = Object.keys(a.drift || {}).length > 0;
    return el("tr", { dataAccount: a.id, dataStanding: worstStanding(a.limit_distances || []), dataDrift: drifting ? "true" : "false" },
      el("td", { text: a.id }),
      el("td", { text: a.connection }),
      el("td", { class: "pos" + (Object.keys(a.positions).length ? "" : " flat"), dataPosition: positionsText(a.positions), text: positionsText(a.positions) }),
      ordersCell(a),
      el("td", { class: "num" }, money(a.daily_pnl)),
      el("td", { class: "num" }, money(a.weekly_pnl)),
      el("td", { class: "num" }, money(a.equity)),
      limitsCell(a),
      rulesCell(a),
      el("td", {}, el("span", { class: "badge risk", dataState: a.risk_status, text: a.risk_status })),
      el("td", { class: "lock-reason", text: a.lock_reason || "—" }),
      copyingCell(a),
      el("td", { class: "actions" },
        el("button", { class: "danger", dataAction: "flatten-account", text: "Flatten", onclick: () => flattenAccount(a.id) }),
        " ",
        locked
          ? el("button", { dataAction: "unlock", text: "Unlock", onclick: () => command("POST", `/api/accounts/${enc(a.id)}/unlock`) })
          : el("button", { dataAction: "lock", text: "Lock", onclick: () => lockAccount(a) }),
        " ",
        el("button", { dataAction: "limits", text: "Limits", onclick: () => editLimits(a) }),
        " ",
        follower ? el("button", { dataAction: "sync", text: "Sync", title: "Bring it in line with its leader's position (S6.2): shows the orders first", onclick: () => syncAccount(a.id) }) : null,
        follower ? " " : null,
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
      el("span", { class: "on-drift muted", dataOnDrift: g.on_drift, title: ON_DRIFT_WORDS[g.on_drift] || "", text: `on drift: ${g.on_drift}` }),
      el("div", { class: "spacer" }),
      el("button", { dataAction: "edit-group", text: "On drift", onclick: () => editGroup(g) }),
      el("button", { dataAction: "add-follower", text: "Add follower", onclick: () => addFollower(g.id) }),
      el("button", { class: "danger", dataAction: "flatten-group", dataGroup: g.id, text: "Flatten Group", onclick: () => flattenGroup(g) }),
      el("button", { class: "danger", dataAction: "delete-group", text: "Delete group", onclick: () => confirmDelete("group", g.id, `/api/groups/${enc(g.id)}`) }),
    ),
    g.followers.length
      ? el("table", {},
        el("thead", {}, el("tr", {}, ["Follower", "Ratio", "Max qty", "Symbol map", "Copy", "Disabled", ""].map((h) => el("th", { text: h })))),
        el("tbody", {}, g.followers.map((f) => el("tr", { dataFollower: f.account },
          el("td", { text: f.account }),
          el("td", { text: f.ratio }),
          el("td", { text: f.max_qty ?? "—" }),
          el("td", { text: symbolMapText(f.symbol_map) || "—" }),
          el("td", { class: "copy-mode", dataCopy: f.copy, title: f.copy === "orders" ? "mirrors the leader's working orders and brackets at the broker (S8)" : "copies the leader's fills as market orders (S2)", text: f.copy }),
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
  const fill = kind === "activity" && data.fill
    ? el("a", { href: "#", class: "fill-link", dataFill: data.fill, title: "the leader's fill and every follower's copy of it", text: `fill ${data.fill}`, onclick: (event) => { event.preventDefault(); showFill(data.fill); } })
    : null;
  return el("li", { class: fresh ? "fresh" : "", dataKind: label, dataLevel: level },
    el("span", { class: "t", text: time }), el("span", { class: "k", text: label }), el("span", { class: "m", text }), fill);
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

// Sync (S6.2): the follower's orders toward its leader's position, shown first (a dry run) and
// sent only on confirm, with the orders shown as "expect": the engine sends nothing if its plan
// has changed since.
function signed(qty) { return `${qty > 0 ? "+" : ""}${qty}`; }

function syncBody(plan) {
  const symbols = [...new Set([...Object.keys(plan.orders), ...Object.keys(plan.targets), ...Object.keys(plan.positions)])].sort();
  const parts = [el("p", { class: "sync-message", text: plan.message })];
  if (symbols.length) {
    parts.push(el("table", { class: "sync-orders" },
      el("thead", {}, el("tr", {}, ["Symbol", "Position → target", "Order"].map((h) => el("th", { text: h })))),
      el("tbody", {}, symbols.map((symbol) => el("tr", { dataSymbol: symbol },
        el("td", { text: symbol }),
        el("td", { text: `${signed(plan.positions[symbol] || 0)} → ${signed(plan.targets[symbol] || 0)}` }),
        el("td", { class: "sync-order", text: plan.orders[symbol] ? signed(plan.orders[symbol]) : "—" }),
      )))));
  }
  if (plan.skip) parts.push(el("p", { class: "sync-skip error", text: `Nothing is sent: ${plan.skip}` }));
  if (plan.gate) parts.push(el("p", { class: "sync-gate error", text: `The risk gate: ${plan.gate}` }));
  return parts;
}

async function syncAccount(account) {
  let plan;
  try { plan = await api("POST", `/api/accounts/${enc(account)}/sync?dry_run=true`); } catch (error) {
    if (error.status !== 401) notice(error.message, true);
    return;
  }
  const sends = !plan.skip && Object.keys(plan.orders).length > 0;
  const title = `Sync ${account} with its leader (group ${plan.group})?`;
  if (await confirmDialog(title, syncBody(plan), { ok: "Send these orders", canConfirm: sends })) {
    await command("POST", `/api/accounts/${enc(account)}/sync`, { expect: plan.orders });
  }
}

async function addFollower(group) {
  const values = await editDialog(`Add a follower to ${group}`, [
    { name: "account", label: "Account" },
    { name: "ratio", label: "Ratio", value: "1" },
    { name: "max_qty", label: "Max qty (empty: no cap)" },
    { name: "symbol_map", label: "Symbol map (e.g. ES→MES)" },
    { name: "copy", label: "Copy: fills or orders", value: "fills" },
  ]);
  if (!values) return;
  const body = { account: values.account, ratio: values.ratio || "1", symbol_map: parseSymbolMap(values.symbol_map) };
  if (values.copy) body.copy = values.copy.toLowerCase();
  if (values.max_qty) body.max_qty = Number(values.max_qty);
  await command("POST", `/api/groups/${enc(group)}/followers`, body, `${values.account} follows ${group}`);
}

async function editFollower(group, follower) {
  const values = await editDialog(`${follower.account} in ${group}`, [
    { name: "ratio", label: "Ratio", value: follower.ratio },
    { name: "max_qty", label: "Max qty (empty: no cap)", value: follower.max_qty ?? "" },
    { name: "symbol_map", label: "Symbol map (e.g. ES→MES)", value: symbolMapText(follower.symbol_map) },
    { name: "copy", label: "Copy: fills or orders", value: follower.copy },
  ]);
  if (!values) return;
  const body = { ratio: values.ratio, symbol_map: parseSymbolMap(values.symbol_map) };
  if (values.copy) body.copy = values.copy.toLowerCase();
  if (values.max_qty) body.max_qty = Number(values.max_qty); else body.clear_max_qty = true;
  await command("PATCH", `/api/groups/${enc(group)}/followers/${enc(follower.account)}`, body, "terms saved");
}

// S10.2: what a group does when one of its followers drifts.
const ON_DRIFT_WORDS = {
  alert: "a drifting follower gets a drift entry and an alert, nothing more",
  reduce: "a drifting follower is also brought toward its expected position, flatten-only, once per episode",
};

async function editGroup(group) {
  const values = await editDialog(`Group ${group.id}`, [
    { name: "on_drift", label: "When a follower drifts", value: group.on_drift, options: Object.entries(ON_DRIFT_WORDS).map(([value, words]) => [value, `${value}: ${words}`]) },
  ]);
  if (!values || values.on_drift === group.on_drift) return;
  await command("PATCH", `/api/groups/${enc(group.id)}`, { on_drift: values.on_drift }, `group ${group.id}: on_drift ${values.on_drift}`);
}

async function removeFollower(group, account) {
  if (await confirmDialog(`Remove ${account} from ${group}?`, el("p", { text: "It stops copying; its positions stay as they are." }))) {
    await command("DELETE", `/api/groups/${enc(group)}/followers/${enc(account)}`);
  }
}

// --- the paper desk: only on a paper-broker engine (GET /api/paper answers 409 on a real one) ---

async function loadDesk() {
  let desk;
  try { desk = await api("GET", "/api/paper"); } catch (error) {
    state.desk = false;
    $("#paper").hidden = true;
    return;
  }
  state.desk = true;
  $("#paper").hidden = false;
  const select = $("#paper-trade select[name=account]");
  if (Array.from(select.options, (o) => o.value).join() !== desk.accounts.join()) {
    const chosen = select.value;
    select.replaceChildren(...desk.accounts.map((a) => el("option", { value: a, text: a })));
    if (desk.accounts.includes(chosen)) select.value = chosen;
  }
  const symbols = Object.keys(desk.prices).sort();
  $("#paper-symbols").replaceChildren(...symbols.map((sym) => el("option", { value: sym })));
  $("#paper-prices").textContent = symbols.length
    ? `Last prices: ${symbols.map((sym) => `${sym} ${desk.prices[sym]}`).join(" · ")}${desk.market ? " (the simulated market walks on from a price set)" : ""}`
    : "No prices yet: set a symbol's price before trading it.";
}

// The desk's answer (or the API's refusal, which names the field at fault) under the forms.
async function deskAnswer(call) {
  const out = $("#paper-result");
  try {
    const answer = await call;
    out.textContent = answer.message;
    out.classList.remove("error");
    scheduleRefresh(100);
    loadDesk();
    return answer;
  } catch (error) {
    if (error.status === 401) return null;
    out.textContent = error.message;
    out.classList.add("error");
    return null;
  }
}

function wholeNumber(text) {
  const value = String(text || "").trim();
  return /^[0-9]+$/.test(value) ? Number(value) : value;
}

async function paperTrade(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {
    account: form.get("account"), side: form.get("side"),
    qty: wholeNumber(form.get("qty")), symbol: String(form.get("symbol") || "").trim().toUpperCase(),
  };
  await deskAnswer(api("POST", "/api/paper/trade", body));
}

async function paperPrice(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { symbol: String(form.get("symbol") || "").trim().toUpperCase(), last: String(form.get("last") || "").trim() };
  await deskAnswer(api("POST", "/api/paper/price", body));
}

// --- one leader fill: its entry and every follower's copy, skip or rejection of it -------------

async function showFill(key) {
  let page;
  try { page = await api("GET", `/api/activity?fill=${enc(key)}&limit=500`); } catch (error) {
    if (error.status !== 401) notice(error.message, true);
    return;
  }
  const items = [...page.items].reverse();  // oldest first: the leader's fill, then its copies
  const list = el("ol", { id: "fill-entries" }, items.map((item) =>
    el("li", { dataKind: item.kind, dataLevel: item.level, dataAccount: item.account || "" },
      `${item.time.slice(11, 19)} ${item.account || item.connection || "engine"}: ${item.message}`)));
  const body = items.length ? list : el("p", { class: "muted", text: "No entry of this fill is kept any more." });
  await confirmDialog(`Leader fill ${key}`, body, { canConfirm: false });
}

// --- refresh and the live stream ---------------------------------------------------------------

async function refresh() {
  try {
    const [status, connections, accounts, groups, profiles, blackouts] = await Promise.all([
      api("GET", "/api/status"), api("GET", "/api/connections"), api("GET", "/api/accounts"), api("GET", "/api/groups"),
      api("GET", "/api/profiles"), api("GET", "/api/blackouts"),
    ]);
    renderBrokers(status.brokers);
    renderConnections(connections);
    renderAccounts(accounts);
    renderGroups(groups);
    renderRules(profiles, blackouts, accounts);  // cockpit-rules.js
    if (state.desk) loadDesk();
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
  await loadDesk();
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
  $("#paper-trade").addEventListener("submit", paperTrade);
  $("#paper-price").addEventListener("submit", paperPrice);
  $("#add-group").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const done = await command("POST", "/api/groups", { id: form.get("id"), leader: form.get("leader"), followers: [], on_drift: form.get("on_drift") || "alert" }, `group ${form.get("id")} created`);
    if (done) event.target.reset();
  });
  const token = tokenFromUrl() || localStorage.getItem(TOKEN_KEY);
  if (token) start(token); else showLogin();
});
