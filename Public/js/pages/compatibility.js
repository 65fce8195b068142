import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { tierBadge, backendSwitch, chooseBackend, chosenBackend, machineTypeHref, QEMU_TIER_PROMISE } from "./machine-types.js";

const STATUS = {
  same: ["✓", "this release"],
  compatible: ["✓", "moves both ways"],
  conditional: ["✓", "moves; back only while new subsections are not needed"],
  forwardOnly: ["→", "moves forward only"],
  incompatible: ["✗", "does not move"],
  absent: ["—", "unknown to that release"],
  unchecked: ["?", "checked at restore time"],
  blocked: ["✗", "not migratable"],
};

/** Where QEMU's cells mean something else than the frozen releases'. */
const QEMU_STATUS = {
  ...STATUS,
  same: ["✓", "this QEMU"],
  conditional: ["?", "states match; QEMU promises nothing"],
  unchecked: ["?", "could not be checked"],
};

/** Machine type × release: does state move between this release and that one, and if not, why. */
export async function renderCompatibility(main) {
  const backend = chosenBackend();
  const switcher = backendSwitch(backend, (value) => { chooseBackend(value); renderCompatibility(main); });
  if (backend === "qemu") return renderQEMUCompatibility(main, switcher);
  const matrix = await api("GET", "/compatibility");
  const releases = matrix.releases || [];
  const rows = matrix.items || [];
  fill(main,
    h("p", {}, h("a", { href: "#/machine-types" }, "← Machine types")),
    h("h1", {}, "Compatibility"),
    switcher,
    h("p", {}, `Whether a guest's state moves between this release (${matrix.currentRelease}) and each frozen release, both directions, as the static checker finds it.`),
    rows.length === 0 ? h("p", { class: "muted" }, "No machine types.") :
      h("table", { class: "matrix" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Machine type"), releases.map((r) => h("th", { scope: "col" }, `release ${r}`)))),
        h("tbody", {}, rows.map((row) => h("tr", {},
          h("th", { scope: "row" }, h("a", { href: `#/machine-types/${encodeURIComponent(row.machineType)}` }, row.machineType), " ", tierBadge(row.tier)),
          releases.map((release) => cell((row.cells || []).find((c) => c.release === release))))))));
  return {};
}

/** QEMU's machine types × the QEMUs of this host and its peers, one table per architecture: a
 * type only moves between QEMUs of its own architecture. */
async function renderQEMUCompatibility(main, switcher) {
  const matrix = await api("GET", "/compatibility?backend=qemu");
  const rows = matrix.items || [];
  const arches = [...new Set(rows.map((row) => row.arch))];
  const unreachable = matrix.unreachablePeers || [];
  fill(main,
    h("p", {}, h("a", { href: "#/machine-types" }, "← Machine types")),
    h("h1", {}, "Compatibility"),
    switcher,
    h("p", {}, "Whether a QEMU guest's state moves from this host's QEMU to each QEMU here and on the peers, both directions: the static checker on QEMU's own -dump-vmstate of each side, and what QEMU promises for the type's tier."),
    unreachable.length ? h("p", { class: "error", id: "unreachable-peers" }, `Peers not asked: ${unreachable.join("; ")}`) : null,
    rows.length === 0 ? h("p", { class: "muted" }, "No QEMU binaries were found on this host.") : null,
    arches.map((arch) => {
      const ofArch = rows.filter((row) => row.arch === arch);
      const columns = [...new Set(ofArch.flatMap((row) => (row.cells || []).map((c) => c.release)))];
      return h("section", { class: "card", "aria-labelledby": `compat-${arch}` },
        h("h2", { id: `compat-${arch}` }, arch),
        h("table", { class: "matrix", "data-arch": arch },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Machine type"), columns.map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, ofArch.map((row) => h("tr", { "data-name": row.machineType, "data-binary": row.binary },
            h("th", { scope: "row" },
              h("a", { href: machineTypeHref({ backend: "qemu", binary: row.binary, name: row.machineType }) }, row.machineType), " ",
              h("span", { class: `badge ${row.tier}`, title: QEMU_TIER_PROMISE[row.tier] || "" }, row.tier)),
            columns.map((column) => cell((row.cells || []).find((c) => c.release === column), QEMU_STATUS)))))));
    }));
  return {};
}

function cell(value, words = STATUS) {
  if (!value) return h("td", { class: "muted" }, "—");
  const [mark, says] = words[value.status] || ["?", value.status];
  const ok = value.forward === true;
  const problems = [...(value.forwardProblems || []), ...(value.backwardProblems || [])];
  return h("td", { class: ok ? "cell-ok" : "cell-bad" },
    h("strong", {}, `${mark} ${says}`),
    value.reason ? h("div", { class: "small" }, value.reason) : null,
    problems.length ? h("ul", { class: "small" }, problems.slice(0, 5).map((p) => h("li", {}, p))) : null);
}
