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

/** What QEMU promises for its machine types' tiers (SPEC §8 "QEMU tiers"). */
export const QEMU_TIER_PROMISE = {
  versioned: "Migrates forward to the same or a newer QEMU: QEMU keeps the guest ABI of a versioned type.",
  unversioned: "Migrates between the same QEMU version only; across versions it works or fails with QEMU's error.",
  none: "QEMU refuses snapshots and migration: a device registers a migration blocker.",
};

const BACKEND_KEY = "emupanel.machineTypes.backend";

/** The backend the machine-types and compatibility pages show, as last chosen in this tab. */
export function chosenBackend() {
  return sessionStorage.getItem(BACKEND_KEY) === "qemu" ? "qemu" : "builtin";
}

/** The link to a machine type's page; a QEMU type is named with its binary. */
export function machineTypeHref(type) {
  return type.backend === "qemu"
    ? `#/machine-types/qemu/${encodeURIComponent(type.binary)}/${encodeURIComponent(type.name)}`
    : `#/machine-types/${encodeURIComponent(type.name)}`;
}

/** Remembers the backend chosen in this tab. */
export function chooseBackend(value) {
  sessionStorage.setItem(BACKEND_KEY, value);
}

export function backendSwitch(backend, onChange) {
  const option = (value, label) => {
    const input = h("input", { type: "radio", name: "backend", id: `backend-${value}`, value });
    input.checked = value === backend;
    input.addEventListener("change", () => { if (input.checked) onChange(value); });
    return h("label", { class: "inline", for: `backend-${value}` }, input, ` ${label}`);
  };
  return h("fieldset", { class: "backend-switch", id: "backend-switch" },
    h("legend", {}, "Backend"), option("builtin", "Built-in RISC-V core"), option("qemu", "QEMU"));
}

/** Every machine type of one backend with its tier and what the tier promises. */
export async function renderMachineTypes(main) {
  const backend = chosenBackend();
  const rerender = (value) => { chooseBackend(value); renderMachineTypes(main); };
  if (backend === "qemu") return renderQEMUMachineTypes(main, backendSwitch(backend, rerender));
  const { items } = await api("GET", "/machine-types?backend=builtin");
  fill(main,
    h("h1", {}, "Machine types"),
    backendSwitch(backend, rerender),
    h("p", {}, h("a", { href: "#/compatibility" }, "Compatibility across releases →")),
    items.length === 0 ? h("p", { class: "muted" }, "No machine types are registered.") :
      h("table", {},
        h("thead", {}, h("tr", {}, ["Name", "Tier", "What it promises", "Description"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, items.map((type) => h("tr", {},
          h("td", {}, h("a", { href: machineTypeHref(type) }, type.name),
            type.alias ? h("div", { class: "muted small" }, `alias: ${type.alias}`) : null,
            type.deprecated ? h("div", { class: "tag warn" }, "deprecated") : null),
          h("td", {}, tierBadge(type.tier)),
          h("td", {}, TIER_PROMISE[type.tier] || ""),
          h("td", {}, type.description || ""))))));
  return {};
}

/** QEMU's machine types, binary by binary, with the tier computed from what QEMU reports. */
async function renderQEMUMachineTypes(main, switcher) {
  const [{ items }, host] = await Promise.all([api("GET", "/machine-types?backend=qemu"), api("GET", "/host").catch(() => null)]);
  const binaries = host && host.qemu ? host.qemu.binaries : [];
  const failures = host && host.qemu ? host.qemu.failures : [];
  fill(main,
    h("h1", {}, "Machine types"),
    switcher,
    h("p", { id: "qemu-binaries" }, binaries.length === 0 ? "No QEMU binaries were found on this host."
      : `QEMU on this host: ${binaries.map((b) => `${b.name} ${b.version}${b.package ? ` (${b.package})` : ""}`).join(", ")}.`),
    failures.length ? h("p", { class: "muted small" }, `Not usable: ${failures.map((f) => `${f.path}: ${f.reason}`).join("; ")}`) : null,
    h("p", {}, h("a", { href: "#/compatibility" }, "Compatibility across QEMU versions →")),
    items.length === 0 ? null :
      h("table", { id: "qemu-machine-types" },
        h("thead", {}, h("tr", {}, ["Name", "Tier", "Why", "Binary", "Blockers"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, items.map((type) => h("tr", { "data-binary": type.binary, "data-name": type.name },
          h("td", {}, h("a", { href: machineTypeHref(type) }, type.name),
            type.alias ? h("div", { class: "muted small" }, `alias: ${type.alias}`) : null,
            type.deprecated ? h("div", { class: "tag warn" }, "deprecated") : null),
          h("td", {}, h("span", { class: `badge ${type.tier}`, title: QEMU_TIER_PROMISE[type.tier] || "" }, type.tier)),
          h("td", {}, type.tierReason || ""),
          h("td", {}, `${type.binary} ${type.qemuVersion}`),
          h("td", {}, (type.blockers || []).map((b) => b.reason).join("; ") || "—"))))));
  return {};
}

/** How a device's state travels, in words: its VMState description and versions, or why it cannot. */
export function deviceStateText(device) {
  if (device.migration === "vmstate" && device.state) return `${device.state.name} (VMState)`;
  if (device.migration === "stateless") return "no state to move";
  if (device.migration === "unmigratable") return `cannot migrate: ${device.blocker || "it holds host state"}`;
  return device.migration || "—";
}

/** One QEMU machine type: what QEMU reports, the tier computed from it, QEMU's own dump. */
async function renderQEMUMachineType(main, binary, name) {
  const query = `backend=qemu&binary=${encodeURIComponent(binary)}`;
  const type = await api("GET", `/machine-types/${encodeURIComponent(name)}?${query}`);
  const blockers = type.blockers || [];
  fill(main,
    h("p", {}, h("a", { href: "#/machine-types" }, "← Machine types")),
    h("h1", {}, type.name, " ", h("span", { class: `badge ${type.tier}`, title: QEMU_TIER_PROMISE[type.tier] || "" }, type.tier)),
    h("section", { class: "card" },
      h("p", {}, h("strong", {}, QEMU_TIER_PROMISE[type.tier] || "")),
      type.tierReason ? h("p", { id: "tier-reason" }, type.tierReason) : null,
      h("dl", { class: "kv" },
        type.alias ? [h("dt", {}, "Alias"), h("dd", {}, `${type.alias} → ${type.name}`)] : [],
        h("dt", {}, "QEMU"), h("dd", {}, `${type.binary} ${type.qemuVersion} (${type.arch})`),
        h("dt", {}, "Deprecated"), h("dd", {}, type.deprecated ? (type.deprecationReason || "yes") : "no"),
        type.probeError ? [h("dt", {}, "Probe"), h("dd", {}, `does not start with its default devices: ${type.probeError}`)] : [])),
    blockers.length ? h("section", { class: "card", "aria-labelledby": "blockers-h" },
      h("h2", { id: "blockers-h" }, "Migration blockers"),
      h("ul", { id: "blockers" }, blockers.map((b) => h("li", {}, b.deviceId ? [h("strong", {}, b.deviceId), `: ${b.reason}`] : b.reason)))) : null,
    h("p", {}, h("a", { href: `/api/v1/machine-types/${encodeURIComponent(type.name)}/vmstate?${query}`, target: "_blank", rel: "noopener" },
      "State descriptions (QEMU's own -dump-vmstate JSON)")));
  return {};
}

/** One machine type: tier and why, devices with state versions, blockers, compat properties. */
export async function renderMachineType(main, name) {
  if (name.startsWith("qemu/")) {
    const [, binary, ...rest] = name.split("/");
    return renderQEMUMachineType(main, binary, rest.join("/"));
  }
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
