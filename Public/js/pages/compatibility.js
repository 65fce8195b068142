import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { tierBadge } from "./machine-types.js";

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

/** Machine type × release: does state move between this release and that one, and if not, why. */
export async function renderCompatibility(main) {
  const matrix = await api("GET", "/compatibility");
  const releases = matrix.releases || [];
  const rows = matrix.items || [];
  fill(main,
    h("p", {}, h("a", { href: "#/machine-types" }, "← Machine types")),
    h("h1", {}, "Compatibility"),
    h("p", {}, `Whether a guest's state moves between this release (${matrix.currentRelease}) and each frozen release, both directions, as the static checker finds it.`),
    rows.length === 0 ? h("p", { class: "muted" }, "No machine types.") :
      h("table", { class: "matrix" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Machine type"), releases.map((r) => h("th", { scope: "col" }, `release ${r}`)))),
        h("tbody", {}, rows.map((row) => h("tr", {},
          h("th", { scope: "row" }, h("a", { href: `#/machine-types/${encodeURIComponent(row.machineType)}` }, row.machineType), " ", tierBadge(row.tier)),
          releases.map((release) => cell((row.cells || []).find((c) => c.release === release))))))));
  return {};
}

function cell(value) {
  if (!value) return h("td", { class: "muted" }, "—");
  const [mark, words] = STATUS[value.status] || ["?", value.status];
  const ok = value.forward === true;
  const problems = [...(value.forwardProblems || []), ...(value.backwardProblems || [])];
  return h("td", { class: ok ? "cell-ok" : "cell-bad" },
    h("strong", {}, `${mark} ${words}`),
    value.reason ? h("div", { class: "small" }, value.reason) : null,
    problems.length ? h("ul", { class: "small" }, problems.slice(0, 5).map((p) => h("li", {}, p))) : null);
}
