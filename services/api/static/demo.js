// The recsys demo page: plain DOM code against the public HTTP contract.
// The api serves this page (same origin); likes go straight to the collector (CORS).
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const LIKED_GENRE_USERS = 40;
// After a like is accepted the ingester stores it within milliseconds; wait a little
// before asking again so the next list reflects it.
const REFRESH_AFTER_FEEDBACK_MS = 500;

function defaultCollector() {
  return params.get("collector") || localStorage.getItem("recsys.collector")
    || `${location.protocol}//${location.hostname}:5000`;
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

// Deterministic sample users: each likes six films of one genre, dislikes two of another.
function sampleFeedback(items) {
  const genres = [...new Set(items.flatMap((item) => item.genres))];
  const users = [];
  for (let u = 0; u < LIKED_GENRE_USERS; u++) {
    const favourite = genres[u % genres.length];
    const other = genres[(u + 3) % genres.length];
    const liked = items.filter((i) => i.genres.includes(favourite));
    const disliked = items.filter((i) => i.genres[0] === other && !i.genres.includes(favourite));
    const picks = liked.filter((_, n) => (n + u) % liked.length < 6).map((i) => i.item_id);
    const pans = disliked.slice(u % 3, (u % 3) + 2).map((i) => i.item_id);
    users.push({
      user: `sample-${String(u).padStart(2, "0")}`,
      items: [...picks, ...pans],
      actions: [...picks.map(() => "like"), ...pans.map(() => "dislike")],
    });
  }
  return users;
}

async function loadSample() {
  setStatus("catalogue-status", "loading…");
  try {
    const sample = await call("static/sample-catalogue.json");
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
    const users = sampleFeedback(items);
    await Promise.all(users.map((u) => sendFeedback(u.user, u.items, u.actions)));
    setStatus("catalogue-status",
      `${added.total} items in the catalogue; feedback of ${users.length} sample users sent ` +
      "(the trainer publishes a model within TRAIN_INTERVAL)");
  } catch (error) {
    setStatus("catalogue-status", `failed: ${error.message}`, true);
  }
}

function newUser() {
  $("user-id").value = `demo-${Math.random().toString(36).slice(2, 8)}`;
  localStorage.setItem("recsys.user", $("user-id").value);
  $("ratings").replaceChildren();
  refresh();
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
    $("ratings").prepend(element("li", `rated ${action}`, `${action}d: ${title}`));
    setStatus("recs-status", `${action}d “${title}”; updating…`);
    setTimeout(refresh, REFRESH_AFTER_FEEDBACK_MS);
  } catch (error) {
    setStatus("recs-status", `feedback failed: ${error.message}`, true);
  }
}

function init() {
  $("collector-url").value = defaultCollector();
  $("collector-url").addEventListener("change", () =>
    localStorage.setItem("recsys.collector", collector()));
  $("user-id").value = params.get("user") || localStorage.getItem("recsys.user") || "";
  $("load-sample").addEventListener("click", loadSample);
  $("new-user").addEventListener("click", newUser);
  $("refresh").addEventListener("click", refresh);
  refreshModel();
  setInterval(refreshModel, 5000);
  if (!$("user-id").value) newUser();
}

init();
