import { api } from "../api.js";
import { h, errorText } from "../dom.js";

function stat(label, value) {
  return h("div", { class: "stat" }, h("div", { class: "n" }, String(value)), h("div", { class: "l" }, label));
}

export async function renderOverview(main) {
  const host = await api("GET", "/host");
  const counts = host.counts;
  main.replaceChildren(
    h("h1", {}, "Overview"),
    h("div", { class: "grid", "aria-label": "Totals" },
      stat("Machine types", counts.machineTypes),
      stat("Guests", counts.guests),
      stat("Running guests", counts.runningGuests),
      stat("Snapshots", counts.snapshots),
      stat("Active tasks", counts.activeTasks)),
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

export function renderUnavailable(main, title, error) {
  main.replaceChildren(h("h1", {}, title), errorText(error));
}
