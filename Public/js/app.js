// The panel's shell: login, hash routing between pages, live refresh from the events API,
// notifications for finished tasks, keyboard shortcuts.
import { logout, resumeSession } from "./api.js";
import { h, errorText, fill } from "./dom.js";
import { startEvents, stopEvents, onEvent } from "./events.js";
import { startNotifications } from "./notify.js";
import { installShortcuts, showHelp } from "./shortcuts.js";
import { guestName } from "./names.js";
import { renderLogin } from "./pages/login.js";
import { renderOverview } from "./pages/overview.js";
import { renderHost } from "./pages/host.js";
import { renderGuests } from "./pages/guests.js";
import { renderGuest } from "./pages/guest.js";
import { renderTasks } from "./pages/tasks.js";
import { renderTask } from "./pages/task.js";
import { renderMachineTypes, renderMachineType } from "./pages/machine-types.js";
import { renderCompatibility } from "./pages/compatibility.js";

// Route: first hash segment → page; a second segment is the item's id or name.
const pages = {
  "": { nav: "overview", title: "Overview", render: renderOverview },
  host: { nav: "host", title: "Host", render: renderHost },
  "machine-types": { nav: "machine-types", title: "Machine types", render: renderMachineTypes, detail: renderMachineType },
  compatibility: { nav: "machine-types", title: "Compatibility", render: renderCompatibility },
  guests: { nav: "guests", title: "Guests", render: renderGuests, detail: renderGuest },
  tasks: { nav: "tasks", title: "Tasks", render: renderTasks, detail: renderTask },
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const live = document.getElementById("live");
const logoutButton = document.getElementById("logout");
const helpButton = document.getElementById("help-button");
let current = null;
let rendering = 0;

function route() {
  const [key, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const page = pages[key] || pages[""];
  const item = rest.length && rest.join("") !== "" ? decodeURIComponent(rest.join("/")) : null;
  return { page, item };
}

// After a navigation the focus goes to the new page's heading (screen readers announce it, the
// next Tab starts from there), without drawing a focus frame around anything.
function focusHeading() {
  const heading = main.querySelector("h1");
  if (!heading) return;
  heading.tabIndex = -1;
  heading.focus({ preventScroll: true });
}

async function show({ keepFocus = false } = {}) {
  // A refresh still pending belongs to the page being left.
  clearTimeout(refreshTimer);
  const { page, item } = route();
  const generation = ++rendering;
  if (current && current.dispose) current.dispose();
  current = null;
  document.title = `${item ?? page.title} — emupanel`;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === page.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    const rendered = item && page.detail ? await page.detail(main, item) : await page.render(main);
    if (generation !== rendering) { if (rendered && rendered.dispose) rendered.dispose(); return; }
    current = rendered || {};
    if (!keepFocus) focusHeading();
  } catch (error) {
    if (generation !== rendering) return;
    if (error.status === 401) { showLogin(); return; }
    fill(main, h("h1", {}, page.title), errorText(error));
    current = {};
    if (!keepFocus) focusHeading();
  }
}

function showLogin(token = "") {
  // Stop the page's own polling and any render still in flight: the session is gone.
  rendering += 1;
  if (current && current.dispose) current.dispose();
  current = null;
  nav.hidden = true;
  logoutButton.hidden = helpButton.hidden = true;
  stopEvents();
  live.textContent = "";
  renderLogin(main, enter, token);
}

function enter() {
  nav.hidden = false;
  logoutButton.hidden = helpButton.hidden = false;
  if (tokenFromHash()) history.replaceState(null, "", location.pathname + "#/");
  // Again on every login: the events loop ends when the session does.
  startEvents({
    setStatus: (text) => { live.textContent = text; },
    onResync: refresh,
    onSignedOut: () => showLogin(),
  });
  show();
}

// Pages update themselves from events (`onEvent`) or re-render on matching ones (`refreshOn`).
// After missed events (a panel restart) every page re-renders.
let refreshTimer = null;
function refresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { if (!nav.hidden) show({ keepFocus: true }); }, 150);
}
onEvent((event) => {
  if (!current) return;
  if (current.onEvent) current.onEvent(event);
  else if (current.refreshOn && current.refreshOn(event)) refresh();
});

window.addEventListener("hashchange", () => {
  const token = tokenFromHash();
  if (token) showLogin(token);
  else if (!nav.hidden) show();
});
logoutButton.addEventListener("click", async () => { stopEvents(); await logout(); location.hash = "#/"; location.reload(); });
helpButton.addEventListener("click", showHelp);
installShortcuts(() => !nav.hidden);
startNotifications(guestName);

function tokenFromHash() {
  const match = location.hash.match(/^#token=([^&]+)/);
  return match ? decodeURIComponent(match[1]) : null;
}

async function boot() {
  const token = tokenFromHash();
  if (token) { showLogin(token); return; }
  if (await resumeSession()) enter(); else showLogin();
}

boot().catch((error) => fill(main, errorText(error)));
