// Notifications for finished tasks: a toast on every page (kept until closed when a task
// failed), and a desktop notification while the tab is hidden if the user allowed them.
import { h } from "./dom.js";
import { onEvent, liveSince } from "./events.js";

const FINISHED = { "task.succeeded": "succeeded", "task.failed": "failed", "task.cancelled": "cancelled" };
const VERBS = { snapshot: "Snapshot", restore: "Restore", migrate: "Migration" };
let region = null;
let names = () => null;

/** `guestName(id)` gives a guest's name for messages, when the page knows it. */
export function startNotifications(guestName) {
  names = guestName;
  onEvent((event) => {
    const outcome = FINISHED[event.type];
    // Only what finished while this tab was live: a replayed ring is history, not news.
    if (!outcome || Date.parse(event.time) < liveSince() - 60000) return;
    notifyTask(event.data, outcome);
  });
}

function container() {
  if (!region || !region.isConnected) {
    region = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  return region;
}

function describe(task, outcome) {
  const what = VERBS[task.kind] || `Task ${task.kind}`;
  const guest = task.guestId ? (names(task.guestId) || task.guestId) : null;
  return `${what}${guest ? ` of ${guest}` : ""} ${outcome}${outcome === "failed" && task.error ? `: ${task.error}` : ""}`;
}

export function notifyTask(task, outcome) {
  const text = describe(task, outcome);
  const close = h("button", { class: "link close", type: "button", "aria-label": "Dismiss" }, "×");
  const toast = h("div", { class: `toast ${outcome}`, "data-task": task.id },
    h("span", {}, text, " "), h("a", { href: `#/tasks/${encodeURIComponent(task.id)}` }, "View log"), close);
  close.addEventListener("click", () => toast.remove());
  container().append(toast);
  while (region.children.length > 5) region.firstElementChild.remove();
  if (outcome !== "failed") setTimeout(() => toast.remove(), 10000);
  if (document.hidden && "Notification" in window && Notification.permission === "granted") {
    const notification = new Notification("emupanel", { body: text, tag: task.id });
    notification.onclick = () => { window.focus(); location.hash = `#/tasks/${encodeURIComponent(task.id)}`; };
  }
}

/** A button that asks for desktop notifications (browsers only ask after a click). */
export function desktopNotificationsButton() {
  if (!("Notification" in window)) return null;
  const status = h("span", { class: "muted small" });
  const button = h("button", { class: "secondary", type: "button", id: "desktop-notifications" }, "Desktop notifications");
  const update = () => {
    const permission = Notification.permission;
    button.hidden = permission !== "default";
    status.textContent = permission === "granted" ? "Desktop notifications are on for finished tasks."
      : permission === "denied" ? "Desktop notifications are blocked in this browser's settings." : "";
  };
  button.addEventListener("click", async () => { await Notification.requestPermission(); update(); });
  update();
  return h("span", { class: "notifications-setting" }, button, status);
}
