import { api } from "../api.js";
import { h, formatBytes, formatTime, shown, fill } from "../dom.js";
import { resourceGraphs } from "../metrics.js";
import { warningsCard } from "./overview.js";

/** The panel itself: its resources live, its limits and what it found at start. */
export async function renderHost(main) {
  const host = await api("GET", "/host");
  const graphs = resourceGraphs({
    heading: "Panel resources",
    subject: "CPU and resident memory of the whole emupanel process; instructions and dirty pages of all its guests together.",
  });
  fill(main,
    h("h1", {}, "Host"),
    warningsCard(host),
    graphs.element,
    h("section", { class: "card", "aria-labelledby": "limits-h" },
      h("h2", { id: "limits-h" }, "Limits"),
      limitsList(host.limits)),
    h("section", { class: "card", "aria-labelledby": "about-h" },
      h("h2", { id: "about-h" }, "This panel"),
      h("dl", { class: "kv" },
        h("dt", {}, "Release"), h("dd", {}, shown(host.release)),
        h("dt", {}, "Host name"), h("dd", {}, shown(host.hostname)),
        h("dt", {}, "Listening on"), h("dd", {}, shown(host.listen)),
        h("dt", {}, "Up since"), h("dd", {}, formatTime(host.startedAt)),
        h("dt", {}, "Peers"), h("dd", {}, (host.peers || []).length ? host.peers.map((p) => `${p.name} (${p.url})`).join(", ") : "none"))));
  return { dispose: graphs.dispose };
}

function limitsList(limits) {
  if (!limits) return h("p", { class: "muted" }, "This panel does not report its limits; the server checks them when a guest is created.");
  const unlimited = (value, format) => (value === null || value === undefined ? "no limit" : format(value));
  const memory = limits.memoryMiB || {};
  return h("dl", { class: "kv", id: "host-limits" },
    h("dt", {}, "Memory per guest"), h("dd", {}, memory.min != null && memory.max != null ? `${memory.min}–${memory.max} MiB` : "—"),
    h("dt", {}, "Guests"), h("dd", {}, unlimited(limits.maxGuests, (n) => `at most ${n}`)),
    h("dt", {}, "Guest memory in all"), h("dd", {}, unlimited(limits.maxTotalMemoryMiB, (n) => formatBytes(n * 1048576))),
    h("dt", {}, "Snapshot storage"), h("dd", {}, unlimited(limits.maxSnapshotBytes, formatBytes)));
}
