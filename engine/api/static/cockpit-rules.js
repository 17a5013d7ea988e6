// The Cockpit's prop-firm rules (S9), beside cockpit.js and on its helpers ($, el, api, command,
// editDialog, confirmDialog, amount, enc). On each account row: its profile, the max-loss
// threshold and the equity above it, the contracts in use of the cap, the blackout running
// (marked) and the next session close or blackout, in Chicago time. The limits dialog takes
// every risk key and the account's profile; the profiles view shows each profile's keys and
// who uses it, edits them and chooses an account's profile; the blackouts view adds and removes
// blackouts. Every value is checked by the engine, whose refusal names the key.
"use strict";

const RISK_KEYS = [
  "daily_loss_limit", "daily_profit_target", "trailing_drawdown", "weekly_loss_limit", "weekly_profit_target",
  "commission", "commissions", "max_contracts", "contract_weights", "max_loss", "max_loss_mode", "max_loss_stop",
  "start_balance", "flatten_at", "blackout", "consistency_pct",
];
const TABLE_KEYS = new Set(["commissions", "contract_weights"]);
const RISK_HINTS = {
  commissions: "ES:2.10, MES:0.60", contract_weights: "MNQ:0.2", max_loss_mode: "static, intraday_trailing, eod_trailing",
  max_loss_stop: "amount or off", flatten_at: "15:10 or off", blackout: "off, block or flatten",
};
const NEAR_THRESHOLD = 0.2;  // within 20 % of max_loss above the threshold: amber, as the limits
const riskState = { profiles: [] };

// --- values: the API's JSON to words and back --------------------------------------------------

// An instant in America/Chicago: "Tue 01/06 15:10 CT", or "15:10 CT" without the day.
function chicagoText(iso, withDay = true) {
  const options = { timeZone: "America/Chicago", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (withDay) Object.assign(options, { weekday: "short", month: "2-digit", day: "2-digit" });
  return `${new Intl.DateTimeFormat("en-US", options).format(new Date(iso)).replaceAll(",", "")} CT`;
}

// A value as the dialog shows it: tables as "ES:2.10, MES:0.60"; nothing as "".
function riskValueInput(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "object") return Object.entries(value).map(([root, v]) => `${root}:${v}`).join(", ");
  return String(value);
}

// What the dialog's text for key `name` sends: a table's "ROOT:VALUE" pairs as an object ("off"
// or "none": an empty table); anything else as typed, for the engine to check.
function parseRiskInput(name, text) {
  const value = text.trim();
  if (!TABLE_KEYS.has(name)) return value;
  if (["off", "none"].includes(value.toLowerCase())) return {};
  const table = {};
  for (const pair of value.split(",").map((p) => p.trim()).filter(Boolean)) {
    const match = pair.match(/^([A-Za-z0-9]+)\s*(?:[:=]|\s)\s*(\S+)$/);
    if (!match) return value;  // not a table: the engine says what the key takes
    table[match[1].toUpperCase()] = match[2];
  }
  return table;
}

// The body of a change: each key whose text differs from `own`'s, "" removing it (null).
function riskChanges(own, texts) {
  const body = {};
  for (const name of RISK_KEYS) {
    const text = (texts[name] ?? "").trim();
    if (text === riskValueInput(own[name])) continue;
    body[name] = text === "" ? null : parseRiskInput(name, text);
  }
  return body;
}

function contractsText(account) {
  const inUse = account.contracts_in_use || "0";
  return account.max_contracts != null ? `${inUse} / ${account.max_contracts}` : inUse;
}

// How the account stands against its threshold (S9.3): breached at or below it, near within
// 20 % of max_loss above it.
function thresholdStanding(account) {
  const distance = Number(account.threshold_distance);
  if (distance <= 0) return "breached";
  const maxLoss = Number((account.effective || {}).max_loss);
  return maxLoss > 0 && distance <= maxLoss * NEAR_THRESHOLD ? "near" : "ok";
}

function blackoutText(b) {
  if (b.active) return `BLACKOUT ${b.label} until ${chicagoText(b.end, false)}`;
  return `blackout ${b.label} ${chicagoText(b.start)}–${chicagoText(b.end, false)}`;
}

// --- the account row ---------------------------------------------------------------------------

function rulesCell(a) {
  const parts = [];
  if (a.profile) parts.push(el("span", { class: "rule profile", text: `profile ${a.profile}` }));
  if (a.threshold != null) {
    const off = (a.triggers_off || []).includes("max_loss");  // unlocked by hand: until set again
    parts.push(el("span", {
      class: "rule threshold", dataStanding: off ? "off" : thresholdStanding(a),
      title: `account max loss (S9.3): threshold ${a.threshold}, equity ${a.threshold_distance} above it${off ? "; off until max_loss is set again" : ""}`,
      text: `threshold ${amount(a.threshold)} · ${amount(a.threshold_distance)} above${off ? " · off" : ""}`,
    }));
  }
  if (a.max_contracts != null || Number(a.contracts_in_use) > 0) {
    const full = a.max_contracts != null && Number(a.contracts_in_use) >= Number(a.max_contracts);
    parts.push(el("span", { class: "rule contracts", dataFull: full ? "true" : "false", title: "contracts in use (micros weighted) of max_contracts (S9.2)", text: `contracts ${contractsText(a)}` }));
  }
  const blackout = a.blackout;
  if (blackout && blackout.active) parts.push(el("span", { class: "rule blackout", dataActive: "true", title: "opening orders are refused until it ends (S9.5)", text: blackoutText(blackout) }));
  if (a.next_session_close) parts.push(el("span", { class: "rule session", title: "flatten_at: the account is flattened and locked then (S9.4)", text: `close ${chicagoText(a.next_session_close)}` }));
  if (blackout && !blackout.active) parts.push(el("span", { class: "rule blackout", dataActive: "false", text: blackoutText(blackout) }));
  if (!parts.length) return el("td", { class: "rules muted", text: "—" });
  return el("td", { class: "rules" }, parts);
}

// --- the limits dialog: every key, and the account's profile -----------------------------------

function profileOf(name) {
  return riskState.profiles.find((p) => p.name === name) || null;
}

function riskFields(own, inherited) {
  return RISK_KEYS.map((name) => {
    const from = inherited && inherited.limits[name] !== undefined ? `${inherited.name}: ${riskValueInput(inherited.limits[name])}` : RISK_HINTS[name];
    return { name, label: name.replaceAll("_", " "), value: riskValueInput(own[name]), placeholder: from || "" };
  });
}

async function editLimits(account) {
  const profiles = riskState.profiles.map((p) => [p.name, p.name]);
  const fields = [
    { name: "profile", label: "profile", value: account.profile || "", options: [["", "(none)"], ...profiles] },
    ...riskFields(account.limits, profileOf(account.profile)),
  ];
  const values = await editDialog(`Risk keys of ${account.id} (0 turns a number off; empty: the profile's)`, fields, { wide: true });
  if (!values) return;
  const body = riskChanges(account.limits, values);
  if (values.profile !== (account.profile || "")) body.profile = values.profile || null;
  if (Object.keys(body).length) await command("PUT", `/api/accounts/${enc(account.id)}/limits`, body, "limits saved");
}

// --- the profiles view -------------------------------------------------------------------------

function keysText(limits) {
  const entries = Object.entries(limits || {});
  return entries.length ? entries.map(([k, v]) => `${k} ${riskValueInput(v)}`).join(" · ") : "no keys";
}

async function editProfile(profile) {
  const values = await editDialog(`Profile ${profile.name} (empty: the key is removed)`, riskFields(profile.limits, null), { wide: true });
  if (!values) return;
  const body = riskChanges(profile.limits, values);
  if (Object.keys(body).length || !profileOf(profile.name)) {
    await command("PUT", `/api/profiles/${enc(profile.name)}`, body, `profile ${profile.name} saved`);
  }
}

async function deleteProfile(profile) {
  const text = profile.accounts.length
    ? `It is used by ${profile.accounts.join(", ")}: the engine refuses to delete it until they choose another.`
    : "No account uses it.";
  if (await confirmDialog(`Delete profile ${profile.name}?`, el("p", { text }))) {
    await command("DELETE", `/api/profiles/${enc(profile.name)}`, undefined, `profile ${profile.name} deleted`);
  }
}

function renderProfiles(profiles, accounts) {
  riskState.profiles = profiles;
  const rows = profiles.map((p) => el("tr", { dataProfile: p.name },
    el("td", { text: p.name }),
    el("td", { text: p.accounts.join(", ") || "—" }),
    el("td", { class: "profile-keys", text: keysText(p.limits) }),
    el("td", { class: "actions" },
      el("button", { dataAction: "edit-profile", text: "Edit keys", onclick: () => editProfile(p) }),
      " ",
      el("button", { class: "danger", dataAction: "delete-profile", text: "Delete", onclick: () => deleteProfile(p) }),
    )));
  $("#profiles tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No profiles." }))]));
  fillSelect($("#assign-profile select[name=account]"), accounts.map((a) => [a.id, a.id]));
  fillSelect($("#assign-profile select[name=profile]"), [["", "(none)"], ...profiles.map((p) => [p.name, p.name])]);
}

// Options [value, text], keeping the choice made when it is still offered.
function fillSelect(select, options) {
  if (Array.from(select.options, (o) => o.value).join("\n") === options.map(([v]) => v).join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(...options.map(([value, text]) => el("option", { value, text })));
  if (options.some(([v]) => v === chosen)) select.value = chosen;
}

// --- the blackouts view ------------------------------------------------------------------------

function renderBlackouts(blackouts) {
  const rows = blackouts.map((b) => el("tr", { dataBlackout: b.key, dataActive: b.active ? "true" : "false" },
    el("td", { text: b.label }),
    el("td", { text: chicagoText(b.start) }),
    el("td", { text: chicagoText(b.end) }),
    el("td", { class: "blackout-now", text: b.active ? "RUNNING" : "" }),
    el("td", { class: "actions" },
      el("button", { class: "danger", dataAction: "remove-blackout", text: "Remove", onclick: () => removeBlackout(b) }))));
  $("#blackouts tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "5", class: "muted", text: "No blackouts." }))]));
}

async function removeBlackout(b) {
  if (await confirmDialog(`Remove blackout ${b.label}?`, el("p", { text: `${chicagoText(b.start)} to ${chicagoText(b.end)}: opening orders are no longer refused then.` }))) {
    await command("DELETE", `/api/blackouts?key=${enc(b.key)}`, undefined, `blackout ${b.label} removed`);
  }
}

function renderRules(profiles, blackouts, accounts) {
  renderProfiles(profiles, accounts);
  renderBlackouts(blackouts);
}

function bindRules() {
  $("#add-profile").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = String(new FormData(event.target).get("name") || "").trim();
    if (profileOf(name)) { notice(`profile ${name} exists: edit its keys`, true); return; }
    await editProfile({ name, limits: {}, accounts: [] });
    if (profileOf(name)) event.target.reset();
  });
  $("#assign-profile").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const account = String(form.get("account") || "");
    const profile = String(form.get("profile") || "") || null;
    await command("PUT", `/api/accounts/${enc(account)}/limits`, { profile }, `${account}: profile ${profile || "none"}`);
  });
  $("#add-blackout").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = { start: String(form.get("start")).trim(), end: String(form.get("end")).trim(), label: String(form.get("label")).trim() };
    const done = await command("POST", "/api/blackouts", body, `blackout ${body.label} added`);
    if (done) event.target.reset();
  });
}

if (typeof document !== "undefined") document.addEventListener("DOMContentLoaded", bindRules);

// For the tests of the page's logic under node (no browser has `module`).
if (typeof module !== "undefined") {
  module.exports = { RISK_KEYS, blackoutText, chicagoText, contractsText, parseRiskInput, riskChanges, riskValueInput, thresholdStanding };
}
