import { api } from "../api.js";
import { h } from "../dom.js";
import { tierBadge } from "./machine-types.js";

/** Machine type × release: does state move between this release and that one, and if not, why. */
export async function renderCompatibility(main) {
  const matrix = await api("GET", "/compatibility");
  const releases = matrix.releases || [];
  const rows = matrix.machineTypes || matrix.rows || [];
  main.replaceChildren(
    h("p", {}, h("a", { href: "#/machine-types" }, "← Machine types")),
    h("h1", {}, "Compatibility"),
    h("p", {}, `Whether a guest's state moves between this release (${matrix.currentRelease || matrix.release || "current"}) and each frozen release, in both directions, as the static checker finds it.`),
    rows.length === 0 ? h("p", { class: "muted" }, "No machine types.") :
      h("table", { class: "matrix" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Machine type"), releases.map((r) => h("th", { scope: "col" }, `release ${r}`)))),
        h("tbody", {}, rows.map((row) => h("tr", {},
          h("th", { scope: "row" }, row.name, " ", row.tier ? tierBadge(row.tier) : null),
          releases.map((release) => cell((row.cells || {})[release] || (row.releases || {})[release])))))));
  return {};
}

function cell(value) {
  if (!value) return h("td", { class: "muted" }, "—");
  const ok = value.compatible ?? value.ok ?? value.moves;
  return h("td", { class: ok ? "cell-ok" : "cell-bad" },
    h("strong", {}, ok ? "✓ moves" : "✗ does not move"),
    value.reason || value.detail ? h("div", { class: "small" }, value.reason || value.detail) : null,
    (value.problems || []).length ? h("ul", { class: "small" }, value.problems.map((p) => h("li", {}, p))) : null);
}
