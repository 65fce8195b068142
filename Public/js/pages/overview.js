import { api } from "../api.js";
import { h } from "../dom.js";

function stat(label, value) {
  return h("div", { class: "stat" }, h("div", { class: "n" }, String(value)), h("div", { class: "l" }, label));
}

export async function renderOverview(main) {
  const [host, guests, tasks] = await Promise.all([
    api("GET", "/host"),
    api("GET", "/guests").catch(() => ({ items: [] })),
    api("GET", "/tasks").catch(() => ({ items: [] })),
  ]);
  const counts = host.counts;
  const byState = {};
  for (const guest of guests.items) (byState[guest.state] = byState[guest.state] || []).push(guest);
  const active = tasks.items.filter((task) => task.status === "queued" || task.status === "running");
  main.replaceChildren(
    h("h1", {}, "Overview"),
    h("div", { class: "grid", "aria-label": "Totals" },
      stat("Machine types", counts.machineTypes),
      stat("Guests", counts.guests),
      stat("Running guests", counts.runningGuests),
      stat("Snapshots", counts.snapshots),
      stat("Active tasks", counts.activeTasks)),
    h("section", { class: "card", "aria-labelledby": "by-state-h" },
      h("h2", { id: "by-state-h" }, "Guests by state"),
      guests.items.length === 0 ? h("p", { class: "muted" }, h("a", { href: "#/guests" }, "Create a guest"), " to get started.") :
        h("dl", { class: "kv" }, Object.entries(byState).flatMap(([state, list]) => [
          h("dt", {}, h("span", { class: `state ${state}` }, state)),
          h("dd", {}, list.map((guest, index) => [index ? ", " : "", h("a", { href: `#/guests/${guest.id}` }, guest.name)]))]))),
    h("section", { class: "card", "aria-labelledby": "running-tasks-h" },
      h("h2", { id: "running-tasks-h" }, "Running tasks"),
      active.length === 0 ? h("p", { class: "muted" }, "Nothing running.") :
        h("ul", {}, active.map((task) => h("li", {}, `${task.kind} `, task.guestId ? h("a", { href: `#/guests/${task.guestId}` }, task.guestId) : "",
          " ", h("progress", { max: 1, value: task.progress || 0, "aria-label": `${task.kind} progress` }))))),
    h("section", { class: "card", "aria-labelledby": "host-h" },
      h("h2", { id: "host-h" }, "Host"),
      h("dl", { class: "kv" },
        h("dt", {}, "Release"), h("dd", { id: "release" }, host.release),
        h("dt", {}, "Host name"), h("dd", {}, host.hostname),
        h("dt", {}, "Listening on"), h("dd", {}, host.listen),
        h("dt", {}, "Up since"), h("dd", {}, new Date(host.startedAt).toLocaleString()))),
    h("section", { class: "card", "aria-labelledby": "peers-h" },
      h("h2", { id: "peers-h" }, "Peers"),
      host.peers.length === 0
        ? h("p", { class: "muted" }, "No peers configured. Add them under \"peers\" in the configuration to migrate guests by name.")
        : h("ul", {}, host.peers.map((peer) => h("li", {}, `${peer.name} — ${peer.url}`)))));
  return { refreshOn: (event) => event.type.startsWith("guest.") || event.type.startsWith("task.") };
}
