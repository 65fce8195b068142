import { api } from "../api.js";
import { h, formatBytes, formatTime, shown, fill } from "../dom.js";
import { learnGuests } from "../names.js";
import { stateBadge } from "./guest-actions.js";

function stat(label, value) {
  return h("div", { class: "stat" }, h("div", { class: "n" }, shown(value)), h("div", { class: "l" }, label));
}

/** What the panel found at start that needs a person (missing files, orphans): GET /host `warnings`. */
export function warningsCard(host) {
  const warnings = Array.isArray(host.warnings) ? host.warnings : [];
  if (warnings.length === 0) return null;
  return h("section", { class: "card warn", id: "host-warnings", "aria-labelledby": "warnings-h" },
    h("h2", { id: "warnings-h" }, `Warnings (${warnings.length})`),
    h("ul", {}, warnings.map((warning) => h("li", {}, typeof warning === "string" ? warning : (warning.message || JSON.stringify(warning))))));
}

export async function renderOverview(main) {
  const [host, guests, tasks] = await Promise.all([
    api("GET", "/host"),
    api("GET", "/guests").catch(() => ({ items: [] })),
    api("GET", "/tasks").catch(() => ({ items: [] })),
  ]);
  learnGuests(guests.items);
  const counts = host.counts || {};
  const byState = new Map();
  for (const guest of guests.items) {
    if (!byState.has(guest.state)) byState.set(guest.state, []);
    byState.get(guest.state).push(guest);
  }
  const active = tasks.items.filter((task) => task.status === "queued" || task.status === "running");
  const name = (id) => (guests.items.find((guest) => guest.id === id) || {}).name || id;
  fill(main,
    h("h1", {}, "Overview"),
    warningsCard(host),
    h("div", { class: "grid", "aria-label": "Totals" },
      stat("Machine types", counts.machineTypes),
      stat("Guests", counts.guests),
      stat("Running guests", counts.runningGuests),
      stat("Snapshots", counts.snapshots),
      stat("Active tasks", counts.activeTasks)),
    h("section", { class: "card", "aria-labelledby": "by-state-h" },
      h("h2", { id: "by-state-h" }, "Guests by state"),
      guests.items.length === 0 ? h("p", { class: "muted" }, h("a", { href: "#/guests" }, "Create a guest"), " to get started.") :
        h("dl", { class: "kv", id: "guests-by-state" }, [...byState].map(([state, list]) => [
          h("dt", {}, stateBadge(state)),
          h("dd", {}, list.map((guest, index) => [index ? ", " : "", h("a", { href: `#/guests/${guest.id}` }, guest.name)]))]))),
    h("section", { class: "card", "aria-labelledby": "running-tasks-h" },
      h("h2", { id: "running-tasks-h" }, "Running tasks"),
      active.length === 0 ? h("p", { class: "muted" }, "Nothing running.") :
        h("ul", {}, active.map((task) => h("li", {},
          h("a", { href: `#/tasks/${task.id}` }, task.kind), task.guestId ? [" of ", h("a", { href: `#/guests/${task.guestId}` }, name(task.guestId))] : "",
          " ", h("progress", { max: 1, value: task.progress || 0, "aria-label": `${task.kind} progress` }))))),
    h("section", { class: "card", "aria-labelledby": "host-h" },
      h("h2", { id: "host-h" }, "Host"),
      h("dl", { class: "kv" },
        h("dt", {}, "Release"), h("dd", { id: "release" }, shown(host.release)),
        h("dt", {}, "Host name"), h("dd", {}, shown(host.hostname)),
        h("dt", {}, "Listening on"), h("dd", {}, shown(host.listen)),
        h("dt", {}, "Up since"), h("dd", {}, formatTime(host.startedAt)),
        h("dt", {}, "Guest memory"), h("dd", {}, memoryText(host))),
      h("p", {}, h("a", { href: "#/host" }, "Host resources and limits →"))),
    h("section", { class: "card", "aria-labelledby": "peers-h" },
      h("h2", { id: "peers-h" }, "Peers"),
      (host.peers || []).length === 0
        ? h("p", { class: "muted" }, "No peers configured. Add them under \"peers\" in the configuration to migrate guests by name.")
        : h("ul", {}, host.peers.map((peer) => h("li", {}, `${peer.name} — ${peer.url}`)))));
  return { refreshOn: (event) => (event.type.startsWith("guest.") || event.type.startsWith("task.")) && event.type !== "task.log" && event.type !== "task.progress" };
}

function memoryText(host) {
  const limits = host.limits || {};
  const range = limits.memoryMiB;
  const parts = [];
  if (range && range.min != null && range.max != null) parts.push(`${range.min}–${range.max} MiB per guest`);
  if (limits.maxTotalMemoryMiB != null) parts.push(`at most ${formatBytes(limits.maxTotalMemoryMiB * 1048576)} in all`);
  return parts.length ? parts.join(", ") : "—";
}
