// The alignrec page: plain DOM + fetch over the service's /v1 JSON endpoints; nothing loaded from elsewhere.
"use strict";

const state = { info: null, user: null, basket: [], k: 10 };
const $ = (id) => document.getElementById(id);

function status(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail;
    const message = Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : detail || response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return body;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

// An item's codes as chips coloured by level: tokens (<a_12>), or just the numbers where room is short.
function codesNode(item, { shared = 0, compact = false } = {}) {
  const span = el("span", { className: compact ? "codes compact" : "codes" });
  if (!item.tokens) {
    span.append(el("span", { className: "muted", textContent: "n/a", title: "this run has no item codes" }));
    return span;
  }
  item.tokens.forEach((token, level) => {
    span.append(el("span", {
      className: `code l${level}${level < shared ? " shared" : ""}`,
      textContent: compact ? item.codes[level] : token,
      title: token,
    }));
  });
  return span;
}

function titleLink(item) {
  const link = el("a", { href: "#", className: "item-link", textContent: item.title, title: `item ${item.item_id}` });
  link.dataset.item = item.item_id;
  link.addEventListener("click", (event) => {
    event.preventDefault();
    openItem(item.item_id);
  });
  return link;
}

function addButton(item) {
  const button = el("button", { type: "button", className: "add", textContent: "+", title: "add to my history" });
  button.addEventListener("click", () => addToBasket(item));
  return button;
}

function fillRecs(table, items) {
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const item of items) {
    body.append(el("tr", {}, el("td", { textContent: item.rank }), el("td", {}, titleLink(item)),
      el("td", { className: "num", textContent: Number(item.score).toFixed(3) }), el("td", {}, addButton(item))));
  }
}

function setSource(badge, source) {
  badge.textContent = source;
  badge.className = `badge ${source}`;
  badge.title = {
    cache: "pre-computed by alignrec precompute",
    live: "computed now by the live model",
    fallback: "the popularity list (unknown user, too short a history, or the live model too slow)",
  }[source] || "";
}

function showInfo(info) {
  const live = info.live ? "loaded" : info.live_error ? `not loaded: ${info.live_error}` : "loading";
  $("run-info").textContent = `${info.dataset}: ${info.users.toLocaleString()} users, ${info.items.toLocaleString()} items, `
    + `${info.interactions.toLocaleString()} interactions · snapshot ${info.snapshot || "none (popularity fallback)"} (K=${info.k})`
    + ` · live model ${info.model} (${live})` + (info.codes ? ` · ${info.levels}-level item codes` : "");
  const note = $("codes-note");
  note.hidden = info.codes;
  note.textContent = info.codes_note || "";
  if (!info.live && !info.live_error) {  // an LLM takes a while to load: say when it is ready
    setTimeout(guarded(async () => showInfo(await api("v1/info"))), 3000);
  }
}

async function loadInfo() {
  const info = await api("v1/info");
  state.info = info;
  showInfo(info);
  const select = $("k");
  select.replaceChildren();
  const sizes = [...new Set([5, 10, 20, 50, 100, info.k])].filter((k) => k <= info.k).sort((a, b) => a - b);
  for (const k of sizes) select.append(el("option", { value: k, textContent: k }));
  state.k = Math.min(10, info.k);
  select.value = String(state.k);
}

async function searchUsers() {
  const query = $("user-search").value;
  const users = await api(`v1/users?limit=15&q=${encodeURIComponent(query)}`);
  const list = $("user-results");
  list.replaceChildren();
  for (const user of users) {
    const button = el("button", { type: "button", className: "user-link", textContent: `user ${user.user_id}` });
    button.dataset.user = user.user_id;
    button.addEventListener("click", () => openUser(user.user_id));
    list.append(el("li", {}, button, el("span", { className: "muted", textContent: ` ${user.history_length} items` })));
  }
  if (!users.length) list.append(el("li", { className: "muted", textContent: "no user matches" }));
}

async function searchItems() {
  const query = $("item-search").value;
  const items = await api(`v1/items?limit=15&q=${encodeURIComponent(query)}`);
  const list = $("item-results");
  list.replaceChildren();
  for (const item of items) {
    list.append(el("li", {}, addButton(item), " ", titleLink(item), " ", codesNode(item, { compact: true })));
  }
  if (!items.length) list.append(el("li", { className: "muted", textContent: "no title matches" }));
}

async function showUser(userId) {
  state.user = userId;
  const path = encodeURIComponent(userId);
  const [history, recs] = await Promise.all([
    api(`v1/users/${path}/history`),
    api(`v1/users/${path}/recommendations?k=${state.k}`),
  ]);
  if (state.user !== userId) return;  // a later click won
  $("user-id").textContent = userId;
  $("user-hint").hidden = true;
  $("user-panes").hidden = false;
  $("history-count").textContent = `(${history.items.length} items, oldest first)`;
  const body = $("history").tBodies[0];
  body.replaceChildren();
  history.items.forEach((item, i) => {
    body.append(el("tr", {}, el("td", { textContent: i + 1 }), el("td", {}, titleLink(item)),
      el("td", {}, codesNode(item, { compact: true }))));
  });
  const box = $("history-box");
  box.scrollTop = box.scrollHeight;  // the most recent items matter most to the next one
  setSource($("recs-source"), recs.source);
  $("recs-snapshot").textContent = recs.snapshot ? `snapshot ${recs.snapshot}` : "no snapshot";
  fillRecs($("recs"), recs.items);
  status(`user ${userId}: ${recs.items.length} recommendations (${recs.source})`);
}

async function showItem(itemId) {
  const item = await api(`v1/items/${encodeURIComponent(itemId)}?neighbours=10`);
  $("item-id").textContent = item.item_id;
  $("item-hint").hidden = true;
  $("item-body").hidden = false;
  $("item-title").textContent = item.title;
  $("item-codes").replaceWith(Object.assign(codesNode(item), { id: "item-codes" }));
  $("item-pop").textContent = `${item.interactions.toLocaleString()} interactions`;
  $("item-add").onclick = () => addToBasket(item);
  const body = $("neighbours").tBodies[0];
  body.replaceChildren();
  for (const n of item.neighbours) {
    body.append(el("tr", {}, el("td", { className: "num", textContent: n.shared_prefix }), el("td", {}, titleLink(n)),
      el("td", {}, codesNode(n, { shared: n.shared_prefix })), el("td", { className: "num", textContent: n.distance.toFixed(2) })));
  }
  $("neighbours").hidden = !item.codes;
  $("neighbours-note").textContent = item.codes
    ? "longest shared code prefix first, then the closest codeword sum"
    : item.codes_note;
  status(`item ${item.item_id}: ${item.title}`);
}

function renderBasket() {
  const list = $("basket");
  list.replaceChildren();
  state.basket.forEach((item, i) => {
    const remove = el("button", { type: "button", className: "remove", textContent: "×", title: "remove" });
    remove.addEventListener("click", () => {
      state.basket.splice(i, 1);
      renderBasket();
    });
    list.append(el("li", {}, titleLink(item), " ", remove));
  });
  $("recommend").disabled = $("clear").disabled = !state.basket.length;
}

function addToBasket(item) {
  if (!state.basket.some((b) => b.item_id === item.item_id)) state.basket.push(item);
  renderBasket();
}

async function recommendLive() {
  const started = performance.now();
  const body = JSON.stringify({ history: state.basket.map((item) => item.item_id), k: state.k });
  const recs = await api("v1/recommendations", { method: "POST", headers: { "Content-Type": "application/json" }, body });
  setSource($("adhoc-source"), recs.source);
  $("adhoc-time").textContent = `${Math.round(performance.now() - started)} ms`;
  fillRecs($("adhoc-recs"), recs.items);
  status(`live: ${recs.items.length} recommendations for ${state.basket.length} items (${recs.source})`);
}

function debounce(fn, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

function guarded(fn) {
  return (...args) => fn(...args).catch((error) => status(error.message, true));
}

const openUser = guarded(showUser);
const openItem = guarded(showItem);

window.addEventListener("DOMContentLoaded", () => {
  $("user-search").addEventListener("input", debounce(guarded(searchUsers), 150));
  $("item-search").addEventListener("input", debounce(guarded(searchItems), 150));
  $("k").addEventListener("change", () => {
    state.k = Number($("k").value);
    if (state.user !== null) openUser(state.user);
  });
  $("recommend").addEventListener("click", guarded(recommendLive));
  $("clear").addEventListener("click", () => {
    state.basket = [];
    renderBasket();
  });
  guarded(async () => {
    await loadInfo();
    await Promise.all([searchUsers(), searchItems()]);
    status("ready");
  })();
});
