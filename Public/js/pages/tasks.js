import { api } from "../api.js";
import { h, formatTime, fill } from "../dom.js";
import { listView } from "../list.js";
import { guestName, learnGuests } from "../names.js";
import { desktopNotificationsButton } from "../notify.js";
import { migrationSummary } from "./migrate-figures.js";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
const KINDS = ["snapshot", "restore", "migrate"];

/** Tasks: search, filter and sort; progress while they run, results and errors after; each opens its log. */
export async function renderTasks(main) {
  const [{ items }, guests] = await Promise.all([api("GET", "/tasks"), api("GET", "/guests").catch(() => ({ items: [] }))]);
  learnGuests(guests.items);
  // Newest first unless the user chose otherwise.
  if (!sessionStorage.getItem("emupanel.list.tasks")) {
    sessionStorage.setItem("emupanel.list.tasks", JSON.stringify({ sort: "created", direction: "descending", filters: {}, search: "" }));
  }
  const guestLabel = (task) => (task.guestId ? guestName(task.guestId) || task.guestId : "");
  const list = listView({
    name: "tasks", caption: "Tasks", emptyText: "No tasks yet. Snapshots, restores and migrations run as tasks.",
    searchLabel: "Search tasks (kind, guest, id, error)", rowId: (task) => `task-${task.id}`,
    searchText: (task) => `${task.kind}\n${guestLabel(task)}\n${task.guestId || ""}\n${task.id}\n${task.error || ""}`,
    filters: [
      { id: "status", label: "Status", options: [["", "All statuses"], ["active", "queued or running"], ...STATUSES.map((s) => [s, s])],
        test: (task, status) => (status === "active" ? task.status === "queued" || task.status === "running" : task.status === status) },
      { id: "kind", label: "Kind", options: [["", "All kinds"], ...KINDS.map((k) => [k, k])], test: (task, kind) => task.kind === kind },
    ],
    columns: [
      { key: "created", label: "Started", value: (t) => t.createdAt, cell: (t) => formatTime(t.createdAt) },
      { key: "kind", label: "Task", value: (t) => t.kind,
        cell: (t) => [h("a", { href: `#/tasks/${t.id}` }, t.kind), h("div", { class: "muted small" }, h("code", {}, t.id))] },
      { key: "guest", label: "Guest", value: guestLabel,
        cell: (t) => (t.guestId ? h("a", { href: `#/guests/${t.guestId}` }, guestLabel(t)) : "—") },
      { key: "status", label: "Status", value: (t) => t.status, cell: (t) => h("span", { class: `status ${t.status}` }, t.status) },
      { key: "progress", label: "Progress", value: (t) => t.progress ?? 0,
        cell: (t) => [h("progress", { max: 1, value: t.progress ?? 0, "aria-label": `${t.kind} progress` }), ` ${Math.round((t.progress ?? 0) * 100)}%`] },
      { key: "result", label: "Result", value: (t) => t.error || "", sortable: false,
        cell: (t) => (t.error ? h("span", { class: "error" }, t.error) : summary(t)) },
    ],
  });
  list.set(items);
  const notifications = desktopNotificationsButton();
  fill(main, h("h1", {}, "Tasks"), notifications ? h("p", {}, notifications) : null, list.element);

  return {
    onEvent: async (event) => {
      if (!event.type.startsWith("task.") || event.type === "task.log" || !event.subject) return;
      const known = list.get(event.subject);
      // Progress events carry the task's figures: no need to ask the server for each.
      if (known && event.type === "task.progress") { list.update({ ...known, ...event.data, id: known.id }); return; }
      try { list.update(await api("GET", `/tasks/${event.subject}`)); } catch { /* gone */ }
    },
  };
}

export function summary(task) {
  const d = task.detail;
  if (!d) return "";
  if (task.kind === "migrate" && d.ram) return migrationSummary(d);
  if (d.pauseMs !== undefined) return `guest paused ${d.pauseMs} ms`;
  if (d.name) return `snapshot ${d.name}`;
  return "";
}
