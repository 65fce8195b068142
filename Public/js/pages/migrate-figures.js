// A migration's figures (QEMU's query-migrate names) read against its limits: the downtime beside
// the downtime limit, marked when it was missed, and the throughput beside the bandwidth cap.
import { h, formatBytes, shown } from "../dom.js";

const number = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** {downtime, limit, missed}: missed is null while unknown. */
export function downtimeVerdict(detail, fallbackLimit = null) {
  const downtime = number(detail.downtime);
  const limit = number(detail["downtime-limit"]) || fallbackLimit;
  return { downtime, limit, missed: downtime !== null && limit ? downtime > limit : null };
}

function downtimeCell(detail, fallbackLimit) {
  const { downtime, limit, missed } = downtimeVerdict(detail, fallbackLimit);
  if (downtime === null) return limit ? `— (limit ${limit} ms)` : "—";
  if (missed === null) return `${downtime} ms`;
  return h("span", { class: missed ? "over-limit" : "within-limit", id: "migrate-downtime-verdict" },
    `${downtime} ms `, missed ? h("strong", {}, `over the ${limit} ms limit`) : `(within the ${limit} ms limit)`);
}

function throughputCell(detail) {
  const mbps = number((detail.ram || {}).mbps);
  const cap = number(detail["max-bandwidth"]);
  if (mbps === null) return "—";
  return `${mbps.toFixed(1)} Mbit/s` + (cap ? ` (cap ${formatBytes(cap)}/s = ${(cap * 8 / 1e6).toFixed(1)} Mbit/s)` : "");
}

/** The figures as rows of a definition list. `fallbackLimit`: the limit asked for, when the server did not say. */
export function migrationFigures(detail, status, fallbackLimit = null) {
  const d = detail || {};
  const ram = d.ram || {};
  const bytes = (value) => (number(value) === null ? "—" : formatBytes(value));
  const rows = [
    ["Status", d.status || status],
    ["Transferred", bytes(ram.transferred)],
    ["Remaining", bytes(ram.remaining)],
    ["Total", bytes(ram.total)],
    ["Throughput", throughputCell(d)],
    ["Dirty pages rate", number(ram["dirty-pages-rate"]) === null ? "—" : `${ram["dirty-pages-rate"]} pages/s`],
    ["Dirty syncs", shown(ram["dirty-sync-count"])],
    ["Expected downtime", shown(number(d["expected-downtime"]), " ms")],
    ["Downtime", downtimeCell(d, fallbackLimit)],
    ["Total time", shown(number(d["total-time"]), " ms")],
  ];
  return rows.flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]);
}

/** One line for lists: status, downtime against its limit, total time. */
export function migrationSummary(detail) {
  const { downtime, limit, missed } = downtimeVerdict(detail);
  const down = downtime === null ? "downtime —" : `downtime ${downtime} ms${limit ? ` (limit ${limit} ms)` : ""}`;
  return h("span", { class: missed ? "over-limit" : "" },
    `${detail.status ?? ""} · ${down} · ${shown(number(detail["total-time"]), " ms")} total`,
    missed ? h("strong", {}, " — over the limit") : null);
}
