import { api } from "../api.js";
import { h } from "../dom.js";

/** Tasks: progress bars while they run, results and errors after. */
export async function renderTasks(main) {
  const { items } = await api("GET", "/tasks");
  const body = items.length === 0
    ? h("p", { class: "muted" }, "No tasks yet. Snapshots, restores and migrations run as tasks.")
    : h("table", {},
        h("thead", {}, h("tr", {}, ["Task", "Guest", "Status", "Progress", "Started", "Result"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, items.map((task) => h("tr", { id: `task-${task.id}` },
          h("td", {}, task.kind, h("div", { class: "muted small" }, h("code", {}, task.id))),
          h("td", {}, task.guestId ? h("a", { href: `#/guests/${task.guestId}` }, task.guestId) : "—"),
          h("td", {}, h("span", { class: `status ${task.status}` }, task.status)),
          h("td", {}, h("progress", { max: 1, value: task.progress ?? 0, "aria-label": `${task.kind} progress` }),
            ` ${Math.round((task.progress ?? 0) * 100)}%`),
          h("td", {}, new Date(task.createdAt).toLocaleString()),
          h("td", {}, task.error ? h("span", { class: "error" }, task.error) : summary(task))))));
  main.replaceChildren(h("h1", {}, "Tasks"), body);
  return { refreshOn: (event) => event.type.startsWith("task.") };
}

function summary(task) {
  const d = task.detail;
  if (!d) return "";
  if (task.kind === "migrate" && d.ram) return `${d.status ?? ""} · downtime ${d.downtime ?? "—"} ms · ${d["total-time"] ?? "—"} ms total`;
  if (d.pauseMs !== undefined) return `guest paused ${d.pauseMs} ms`;
  return "";
}
