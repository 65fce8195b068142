// The panel's shell: login, hash routing between pages, live refresh from the events API.
import { logout, resumeSession } from "./api.js";
import { h, errorText } from "./dom.js";
import { startEvents, onEvent } from "./events.js";
import { renderLogin } from "./pages/login.js";
import { renderOverview } from "./pages/overview.js";
import { listPage } from "./pages/list.js";

const pages = {
  "": { id: "overview", title: "Overview", render: renderOverview },
  "machine-types": {
    id: "machine-types", title: "Machine types",
    render: listPage({
      title: "Machine types", path: "/machine-types", eventPrefix: "machine-type",
      empty: "No machine types are registered.",
      columns: [
        { label: "Name", value: (m) => m.name },
        { label: "Tier", value: (m) => h("span", { class: `badge ${m.tier}` }, m.tier) },
        { label: "Description", value: (m) => m.description || "" },
      ],
    }),
  },
  guests: {
    id: "guests", title: "Guests",
    render: listPage({
      title: "Guests", path: "/guests", eventPrefix: "guest.", empty: "No guests yet.",
      columns: [
        { label: "Name", value: (g) => g.name },
        { label: "Machine type", value: (g) => g.machineType },
        { label: "State", value: (g) => g.state },
      ],
    }),
  },
  tasks: {
    id: "tasks", title: "Tasks",
    render: listPage({
      title: "Tasks", path: "/tasks", eventPrefix: "task.", empty: "No tasks yet.",
      columns: [
        { label: "Kind", value: (t) => t.kind },
        { label: "Guest", value: (t) => t.guestId || "" },
        { label: "Status", value: (t) => t.status },
        { label: "Progress", value: (t) => h("progress", { max: 1, value: t.progress ?? 0, "aria-label": "progress" }) },
      ],
    }),
  },
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const live = document.getElementById("live");
const logoutButton = document.getElementById("logout");
let current = null;

function route() {
  const key = location.hash.replace(/^#\/?/, "").split("/")[0];
  return pages[key] || pages[""];
}

async function show() {
  const page = route();
  document.title = `${page.title} — emupanel`;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === page.id) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    current = (await page.render(main)) || {};
  } catch (error) {
    if (error.status === 401) { showLogin(); return; }
    main.replaceChildren(h("h1", {}, page.title), errorText(error));
    current = {};
  }
}

function showLogin(token = "") {
  nav.hidden = true;
  logoutButton.hidden = true;
  renderLogin(main, enter, token);
}

function enter() {
  nav.hidden = false;
  logoutButton.hidden = false;
  if (location.hash.startsWith("#token=")) history.replaceState(null, "", location.pathname + "#/");
  startEvents((text) => { live.textContent = text; });
  show();
}

onEvent((event) => {
  if (current && current.refreshOn && current.refreshOn(event)) show();
});
window.addEventListener("hashchange", () => {
  const token = tokenFromHash();
  if (token) showLogin(token);
  else if (!nav.hidden) show();
});
logoutButton.addEventListener("click", async () => { await logout(); location.hash = "#/"; location.reload(); });

function tokenFromHash() {
  const match = location.hash.match(/^#token=([^&]+)/);
  return match ? decodeURIComponent(match[1]) : null;
}

async function boot() {
  const token = tokenFromHash();
  if (token) { showLogin(token); return; }
  if (await resumeSession()) enter(); else showLogin();
}

boot().catch((error) => main.replaceChildren(errorText(error)));
