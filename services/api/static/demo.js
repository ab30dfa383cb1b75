// The recsys demo page: plain DOM code against the public HTTP contract.
// The api serves this page (same origin); likes go straight to the collector (CORS).
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// After a like is accepted the ingester stores it within milliseconds; wait a little
// before asking again so the next list reflects it.
const REFRESH_AFTER_FEEDBACK_MS = 500;

// The api tells the page where its collector listens (RECSYS_COLLECTOR_PORT, or
// RECSYS_DEMO_COLLECTOR_ADDRESS, which may be relative: "/" behind an Ingress that routes
// /interact to the collector on the page's own host); ?collector= overrides it.
async function defaultCollector() {
  if (params.get("collector")) return params.get("collector");
  const config = await call("demo/config.json");
  if (config.collector_url) {
    return new URL(config.collector_url, location.href).href.replace(/\/+$/, "");
  }
  return `${location.protocol}//${location.hostname}:${config.collector_port}`;
}

function setStatus(id, text, isError = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function call(url, options = {}) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${response.status}: ${body.error || body.detail || response.statusText}`);
  }
  return body;
}

function adminHeaders() {
  const token = $("admin-token").value.trim();
  return token ? { "X-Admin-Token": token } : {};
}

function collector() {
  return $("collector-url").value.replace(/\/+$/, "");
}

async function sendFeedback(userId, itemIds, actions) {
  return call(`${collector()}/interact`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: userId, item_ids: itemIds, actions }),
  });
}

async function loadSample() {
  setStatus("catalogue-status", "loading…");
  try {
    const sample = await call("demo/sample-catalogue.json");
    const items = sample.items;
    const added = await call("add_items", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...adminHeaders() },
      body: JSON.stringify({
        item_ids: items.map((i) => i.item_id),
        genres: items.map((i) => i.genres),
        titles: items.map((i) => i.title),
      }),
    });
    const users = sample.feedback;
    await Promise.all(users.map((u) => sendFeedback(u.user_id, u.item_ids, u.actions)));
    setStatus("catalogue-status",
      `${added.total} items in the catalogue; feedback of ${users.length} sample users sent ` +
      "(the trainer publishes a model within TRAIN_INTERVAL)");
  } catch (error) {
    setStatus("catalogue-status", `failed: ${error.message}`, true);
  }
}

// This browser's ratings per user, so a return visit shows them instead of a blank panel.
function storedRatings(userId) {
  try {
    return JSON.parse(localStorage.getItem(`recsys.ratings.${userId}`) || "[]");
  } catch {
    return [];
  }
}

function showRatings(userId) {
  const ratings = storedRatings(userId);
  $("ratings").replaceChildren(...ratings.map(
    (r) => element("li", `rated ${r.action}`, `${r.action}d: ${r.title}`)));
  $("ratings-hint").hidden = ratings.length > 0;
}

function newUser() {
  $("user-id").value = `demo-${Math.random().toString(36).slice(2, 8)}`;
  localStorage.setItem("recsys.user", $("user-id").value);
  showRatings($("user-id").value);
  refresh();
}

// Start over: wipe this instance (/cleanup), forget this browser's users, load the sample
// again and pick a new user: the way back once a user has seen the whole catalogue.
async function reset() {
  setStatus("catalogue-status", "resetting…");
  try {
    await call("cleanup", { method: "POST", headers: adminHeaders() });
  } catch (error) {
    setStatus("catalogue-status", `reset failed: ${error.message}`, true);
    return;
  }
  for (const key of Object.keys(localStorage)) {
    if (key.startsWith("recsys.")) localStorage.removeItem(key);
  }
  await loadSample();
  newUser();
}

async function refreshModel() {
  try {
    const health = await call("healthcheck");
    $("model-version").textContent = health.model_version || "none yet (cold start)";
    $("health").textContent = "";
  } catch (error) {
    $("health").textContent = `api: ${error.message}`;
  }
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

async function refresh() {
  const userId = $("user-id").value.trim();
  if (!userId) {
    setStatus("recs-status", "pick or create a user first", true);
    return;
  }
  localStorage.setItem("recsys.user", userId);
  try {
    const recs = await call(`recs/${encodeURIComponent(userId)}?explain=true&k=8`);
    const query = recs.item_ids.map((id) => `id=${encodeURIComponent(id)}`).join("&");
    const details = query ? (await call(`items?${query}`)).items : [];
    const byId = Object.fromEntries(details.map((d) => [d.item_id, d]));
    const list = $("recs");
    list.replaceChildren(...recs.item_ids.map((id, n) => {
      const info = byId[id] || { title: null, genres: [] };
      const li = element("li");
      li.dataset.itemId = id;
      li.dataset.source = recs.sources[n];
      li.append(
        element("span", "title", info.title || id),
        element("span", "genres", info.genres.join(", ")),
        element("span", `source ${recs.sources[n]}`, recs.sources[n]),
      );
      for (const action of ["like", "dislike"]) {
        const button = element("button", action, action === "like" ? "Like" : "Dislike");
        button.addEventListener("click", () => rate(userId, id, info.title || id, action));
        li.append(button);
      }
      return li;
    }));
    list.dataset.generation = String(Number(list.dataset.generation) + 1);
    $("model-version").textContent = recs.model_version || "none yet (cold start)";
    $("recs-note").textContent = `for ${userId}`;
    setStatus("recs-status", recs.item_ids.length ? "" : "the catalogue is empty: load the sample");
  } catch (error) {
    setStatus("recs-status", `failed: ${error.message}`, true);
  }
}

async function rate(userId, itemId, title, action) {
  try {
    await sendFeedback(userId, [itemId], [action]);
    const ratings = [{ action, title }, ...storedRatings(userId)];
    localStorage.setItem(`recsys.ratings.${userId}`, JSON.stringify(ratings));
    showRatings(userId);
    setStatus("recs-status", `${action}d “${title}”; updating…`);
    setTimeout(refresh, REFRESH_AFTER_FEEDBACK_MS);
  } catch (error) {
    setStatus("recs-status", `feedback failed: ${error.message}`, true);
  }
}

async function init() {
  $("load-sample").addEventListener("click", loadSample);
  $("reset").addEventListener("click", reset);
  $("new-user").addEventListener("click", newUser);
  $("refresh").addEventListener("click", refresh);
  refreshModel();
  setInterval(refreshModel, 5000);
  try {
    $("collector-url").value = await defaultCollector();
  } catch (error) {
    setStatus("catalogue-status", `collector address unknown: ${error.message}`, true);
  }
  const returning = params.get("user") || localStorage.getItem("recsys.user");
  if (!returning) {
    newUser();
    return;
  }
  // A return visit: the user's ratings and next list at once, not an empty page.
  $("user-id").value = returning;
  showRatings(returning);
  await refresh();
  $("recs-note").textContent = `welcome back, ${returning}`;
}

init();
