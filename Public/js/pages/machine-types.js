import { api } from "../api.js";
import { h, fill } from "../dom.js";

export const TIER_PROMISE = {
  versioned: "Migrates and restores across releases, forward and backward.",
  unversioned: "Works within a release; across releases it works or fails cleanly before any state is applied.",
  none: "Cannot be snapshotted or migrated: a device holds host state.",
};

export function tierBadge(tier) {
  return h("span", { class: `badge ${tier}`, title: TIER_PROMISE[tier] || "" }, tier);
}

/** Every machine type with its tier and what the tier promises. */
export async function renderMachineTypes(main) {
  const { items } = await api("GET", "/machine-types");
  fill(main,
    h("h1", {}, "Machine types"),
    h("p", {}, h("a", { href: "#/compatibility" }, "Compatibility across releases →")),
    items.length === 0 ? h("p", { class: "muted" }, "No machine types are registered.") :
      h("table", {},
        h("thead", {}, h("tr", {}, ["Name", "Tier", "What it promises", "Description"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, items.map((type) => h("tr", {},
          h("td", {}, h("a", { href: `#/machine-types/${encodeURIComponent(type.name)}` }, type.name),
            type.alias ? h("div", { class: "muted small" }, `alias: ${type.alias}`) : null,
            type.deprecated ? h("div", { class: "tag warn" }, "deprecated") : null),
          h("td", {}, tierBadge(type.tier)),
          h("td", {}, TIER_PROMISE[type.tier] || ""),
          h("td", {}, type.description || ""))))));
  return {};
}

/** How a device's state travels, in words: its VMState description and versions, or why it cannot. */
export function deviceStateText(device) {
  if (device.migration === "vmstate" && device.state) return `${device.state.name} (VMState)`;
  if (device.migration === "stateless") return "no state to move";
  if (device.migration === "unmigratable") return `cannot migrate: ${device.blocker || "it holds host state"}`;
  return device.migration || "—";
}

/** One machine type: tier and why, devices with state versions, blockers, compat properties. */
export async function renderMachineType(main, name) {
  const type = await api("GET", `/machine-types/${encodeURIComponent(name)}`);
  const devices = type.devices || [];
  const blockers = type.blockers || [];
  const compat = type.compatProperties || [];
  const deprecation = type.deprecated
    ? `yes${type.deprecationReason ? ` — ${type.deprecationReason}` : ""}${type.deprecatedSince ? ` (since ${new Date(type.deprecatedSince).toLocaleDateString()})` : ""}`
    : "no";
  fill(main,
    h("p", {}, h("a", { href: "#/machine-types" }, "← Machine types")),
    h("h1", {}, type.name, " ", tierBadge(type.tier)),
    h("section", { class: "card" },
      h("p", {}, h("strong", {}, TIER_PROMISE[type.tier] || "")),
      type.tierReason ? h("p", { id: "tier-reason" }, type.tierReason) : null,
      h("dl", { class: "kv" },
        type.alias ? [h("dt", {}, "Alias"), h("dd", {}, `${type.alias} → ${type.name}`)] : [],
        h("dt", {}, "Description"), h("dd", {}, type.description || "—"),
        type.release ? [h("dt", {}, "Since release"), h("dd", {}, type.release)] : [],
        h("dt", {}, "Deprecated"), h("dd", {}, deprecation))),
    blockers.length ? h("section", { class: "card", "aria-labelledby": "blockers-h" },
      h("h2", { id: "blockers-h" }, "Migration blockers"),
      h("ul", { id: "blockers" }, blockers.map((b) => h("li", { "data-device": b.deviceId },
        h("strong", {}, b.deviceId), ` (${b.driver}): ${b.reason}`)))) : null,
    h("section", { class: "card", "aria-labelledby": "devices-h" },
      h("h2", { id: "devices-h" }, "Devices"),
      h("table", { id: "devices" },
        h("thead", {}, h("tr", {}, ["Device", "Driver", "State", "Version", "Oldest loadable"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, devices.map((d) => h("tr", { "data-device": d.id },
          h("td", {}, d.id), h("td", {}, d.driver || "—"),
          h("td", { class: d.migration === "unmigratable" ? "error" : null }, deviceStateText(d)),
          h("td", {}, d.state ? String(d.state.versionId) : "—"),
          h("td", {}, d.state ? String(d.state.minimumVersionId) : "—")))))),
    h("section", { class: "card", "aria-labelledby": "compat-h" },
      h("h2", { id: "compat-h" }, "Compat properties"),
      compat.length === 0 ? h("p", { class: "muted" }, "None: this is the newest behaviour.") :
        h("table", {}, h("thead", {}, h("tr", {}, ["Driver", "Property", "Value"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, compat.map((p) => h("tr", {}, h("td", {}, p.driver), h("td", {}, p.property), h("td", {}, String(p.value))))))),
    h("p", {}, h("a", { href: `/api/v1/machine-types/${encodeURIComponent(type.name)}/vmstate`, target: "_blank", rel: "noopener" }, "State descriptions (QEMU -dump-vmstate JSON)")));
  return {};
}
