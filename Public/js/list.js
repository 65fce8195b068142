// A list as Proxmox and cockpit show them: search, filters, sortable columns, optional row
// selection; rows keyed by id and updated in place, so a change to one item touches one row
// (nothing else on the page is rebuilt, and nobody's typing or selection is lost).
import { h } from "./dom.js";

/**
 * columns: [{key, label, value(item) (sorting), cell(item) (content), sortable = true}]
 * filters: [{id, label, options: [[value, text]], test(item, value)}]; the first option shows all.
 */
export function listView({ name, caption, columns, rowKey = (item) => item.id, searchText, searchLabel = "Search",
  filters = [], selectable = false, emptyText = "Nothing here yet.", rowId = null }) {
  const saved = JSON.parse(sessionStorage.getItem(`emupanel.list.${name}`) || "{}");
  const view = { sort: saved.sort || columns[0].key, direction: saved.direction || "ascending", search: saved.search || "",
    filters: saved.filters || {} };
  const rows = new Map(); // key → {item, tr, checkbox, snapshot}
  const selection = new Set();
  const selectionListeners = [];

  const search = h("input", { type: "search", id: `${name}-search`, value: view.search, autocomplete: "off",
    placeholder: searchLabel, "aria-label": searchLabel, "aria-keyshortcuts": "/" });
  const filterSelects = filters.map((filter) => {
    const select = h("select", { id: `${name}-filter-${filter.id}`, "aria-label": filter.label },
      filter.options.map(([value, text]) => h("option", { value }, text)));
    select.value = view.filters[filter.id] || filter.options[0][0];
    select.addEventListener("change", () => { view.filters[filter.id] = select.value; apply(); });
    return select;
  });
  const count = h("span", { class: "muted small", id: `${name}-count`, role: "status" });
  const toolbar = h("div", { class: "toolbar" }, search, filterSelects, count);
  search.addEventListener("input", () => { view.search = search.value; apply(); });

  const selectAll = selectable ? h("input", { type: "checkbox", id: `${name}-select-all`, "aria-label": "Select all shown" }) : null;
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      for (const [key, row] of rows) {
        if (row.tr.hidden) continue;
        row.checkbox.checked = selectAll.checked;
        if (selectAll.checked) selection.add(key); else selection.delete(key);
      }
      selectionChanged();
    });
  }
  const headers = columns.map((column) => {
    const th = h("th", { scope: "col", "data-key": column.key });
    if (column.sortable === false) { th.append(column.label); return th; }
    const button = h("button", { type: "button", class: "sort" }, column.label);
    button.addEventListener("click", () => {
      view.direction = view.sort === column.key && view.direction === "ascending" ? "descending" : "ascending";
      view.sort = column.key;
      apply();
    });
    th.append(button);
    return th;
  });
  const tbody = h("tbody", {});
  const table = h("table", { class: "list", id: `${name}-table` },
    caption ? h("caption", { class: "sr-only" }, caption) : null,
    h("thead", {}, h("tr", {}, selectable ? h("th", { scope: "col", class: "select" }, selectAll) : null, headers)), tbody);
  const empty = h("p", { class: "muted", id: `${name}-empty` }, emptyText);
  const element = h("div", { class: "list-view" }, toolbar, table, empty);

  function save() {
    sessionStorage.setItem(`emupanel.list.${name}`, JSON.stringify(view));
  }

  function visible(item) {
    const text = view.search.trim().toLowerCase();
    if (text && !searchText(item).toLowerCase().includes(text)) return false;
    return filters.every((filter) => {
      const value = view.filters[filter.id] || filter.options[0][0];
      return value === filter.options[0][0] || filter.test(item, value);
    });
  }

  function apply() {
    save();
    const column = columns.find((c) => c.key === view.sort) || columns[0];
    for (const th of headers) {
      if (th.dataset.key === column.key) th.setAttribute("aria-sort", view.direction);
      else th.removeAttribute("aria-sort");
    }
    const sign = view.direction === "ascending" ? 1 : -1;
    const ordered = [...rows.values()].sort((a, b) => {
      const x = column.value(a.item), y = column.value(b.item);
      const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
      return order * sign;
    });
    let shown = 0;
    ordered.forEach((row, index) => {
      row.tr.hidden = !visible(row.item);
      if (!row.tr.hidden) shown += 1;
      // Moves only what is out of place, so a row being clicked is not pulled out from under the pointer.
      if (tbody.children[index] !== row.tr) tbody.insertBefore(row.tr, tbody.children[index] || null);
    });
    table.hidden = rows.size === 0;
    empty.hidden = rows.size !== 0;
    count.textContent = rows.size === 0 ? "" : shown === rows.size ? `${rows.size} shown` : `${shown} of ${rows.size} shown`;
    if (selectAll) {
      const visibleKeys = [...rows].filter(([, row]) => !row.tr.hidden).map(([key]) => key);
      selectAll.checked = visibleKeys.length > 0 && visibleKeys.every((key) => selection.has(key));
    }
  }

  function fill(row) {
    const cells = columns.map((column) => h("td", { "data-label": column.label }, column.cell(row.item)));
    row.tr.replaceChildren(...(row.checkbox ? [h("td", { class: "select" }, row.checkbox)] : []), ...cells);
  }

  function upsert(item) {
    const key = rowKey(item);
    const snapshot = JSON.stringify(item);
    let row = rows.get(key);
    if (row && row.snapshot === snapshot) return;
    if (!row) {
      const tr = h("tr", { "data-key": key, id: rowId ? rowId(item) : null });
      const checkbox = selectable ? h("input", { type: "checkbox", "aria-label": `Select ${searchText(item).split("\n")[0]}` }) : null;
      if (checkbox) {
        checkbox.addEventListener("change", () => {
          if (checkbox.checked) selection.add(key); else selection.delete(key);
          selectionChanged();
        });
      }
      row = { tr, checkbox };
      rows.set(key, row);
    }
    row.item = item;
    row.snapshot = snapshot;
    fill(row);
  }

  function selectionChanged() {
    for (const key of [...selection]) if (!rows.has(key)) selection.delete(key);
    if (selectAll) apply();
    for (const listener of selectionListeners) listener(selected());
  }

  function selected() {
    return [...selection].filter((key) => rows.has(key)).map((key) => rows.get(key).item);
  }

  return {
    element,
    toolbar,
    /** Replaces every item (first load). */
    set(items) { rows.clear(); tbody.replaceChildren(); for (const item of items) upsert(item); selectionChanged(); apply(); },
    /** Adds or updates one item; its row is rebuilt only when the item changed. */
    update(item) { upsert(item); apply(); },
    remove(key) { const row = rows.get(key); if (row) { row.tr.remove(); rows.delete(key); selectionChanged(); apply(); } },
    get(key) { const row = rows.get(key); return row ? row.item : null; },
    /** The row's element, for in-place touches that need no rebuild (a live figure). */
    row(key) { const row = rows.get(key); return row ? row.tr : null; },
    items() { return [...rows.values()].map((row) => row.item); },
    selected,
    clearSelection() { selection.clear(); for (const row of rows.values()) if (row.checkbox) row.checkbox.checked = false; selectionChanged(); },
    onSelectionChange(listener) { selectionListeners.push(listener); },
  };
}
