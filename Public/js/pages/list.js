import { api, ApiError } from "../api.js";
import { h } from "../dom.js";

/// A page listing one API collection. Collections whose routes this host does not serve yet
/// say so instead of failing.
export function listPage({ title, path, columns, empty, eventPrefix }) {
  return async (main) => {
    let items;
    try {
      items = (await api("GET", path)).items;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        main.replaceChildren(h("h1", {}, title), h("p", { class: "muted" }, "This host does not offer this yet."));
        return {};
      }
      throw error;
    }
    const body = items.length === 0
      ? h("p", { class: "muted" }, empty)
      : h("table", {},
          h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col" }, column.label)))),
          h("tbody", {}, items.map((item) => h("tr", {}, columns.map((column) => h("td", {}, column.value(item)))))));
    main.replaceChildren(h("h1", {}, title), body);
    return { refreshOn: (event) => event.type.startsWith(eventPrefix) };
  };
}
