// Resource graphs for a guest or the panel itself: instructions and dirty pages per second, host
// CPU and resident memory. History from the API, then each sampling round from the event stream.
import { api } from "./api.js";
import { h, formatBytes, formatCount } from "./dom.js";
import { lineGraph } from "./graph.js";
import { onEvent } from "./events.js";

const ALL_FIGURES = [
  ["ips", "Instructions/s", (s) => s.instructionsPerSecond, (v) => `${formatCount(v)}/s`],
  ["dirty", "Dirty pages/s", (s) => s.dirtyPagesPerSecond, (v) => `${formatCount(v)}/s`],
  ["cpu", "Host CPU", (s) => s.cpuPercent, (v) => `${v.toFixed(v < 10 ? 1 : 0)} %`],
  ["rss", "Resident memory", (s) => s.rssBytes, (v) => formatBytes(v)],
];

/**
 * `guestId` null: the panel (host) itself. Returns {element, dispose}. `subject` says in words
 * whose CPU and memory these are, under the heading; `shown` names the figures to draw (a QEMU
 * guest's retired instructions and dirty pages are not counted).
 */
export function resourceGraphs({ guestId = null, heading = "Resources", subject = "", shown = null }) {
  const prefix = guestId ? "guest" : "host";
  const FIGURES = ALL_FIGURES.filter(([key]) => !shown || shown.includes(key));
  // The server's time, from the newest round: the panel samples itself every round, so it ticks.
  let serverNow = null;
  const clock = () => serverNow;
  const graphs = FIGURES.map(([key, title, , format]) => lineGraph({ id: `${prefix}-graph-${key}`, title, format, clock }));
  const status = h("p", { class: "muted small", role: "status" });
  const element = h("section", { class: "card", "aria-labelledby": `${prefix}-graphs-h` },
    h("h2", { id: `${prefix}-graphs-h` }, heading),
    subject ? h("p", { class: "muted small" }, subject) : null,
    h("div", { class: "graphs" }, graphs.map((graph) => graph.element)), status);

  const take = (sample) => FIGURES.forEach(([, , value], i) => graphs[i].push({ time: sample.time, value: value(sample) }));
  api("GET", guestId ? `/guests/${encodeURIComponent(guestId)}/metrics` : "/host/metrics").then((series) => {
    FIGURES.forEach(([, , value], i) => graphs[i].set(series.samples.map((s) => ({ time: s.time, value: value(s) }))));
    if (series.samples.length === 0) status.textContent = guestId ? "No samples yet: they start when the guest runs." : "No samples yet.";
  }).catch((failure) => { status.textContent = failure.message; });
  const stop = onEvent((event) => {
    if (event.type !== "metrics") return;
    serverNow = event.data.host.time;
    const sample = guestId ? event.data.guests[guestId] : event.data.host;
    if (!sample) { graphs.forEach((graph) => graph.refresh()); return; }
    status.textContent = "";
    take(sample);
  });
  return { element, dispose: stop };
}
