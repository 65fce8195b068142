import { api } from "../api.js";
import { h, formatBytes } from "../dom.js";

const NAME = /^[A-Za-z0-9._-]{1,40}$/;

/** A guest's snapshots as a tree, with create, restore, edit description and delete. */
export function snapshotPanel(guest) {
  const tree = h("div", { id: "snapshot-tree" });
  const error = h("p", { class: "error", role: "alert", id: "snapshot-error" });
  const progress = h("p", { class: "muted", role: "status", id: "snapshot-progress" });
  const name = h("input", { id: "snapshot-name", required: true, maxlength: 40, autocomplete: "off", "aria-describedby": "snapshot-error" });
  const description = h("input", { id: "snapshot-description", maxlength: 500, autocomplete: "off" });
  const form = h("form", { novalidate: true },
    h("label", { for: "snapshot-name" }, "Snapshot name"), name,
    h("label", { for: "snapshot-description" }, "Description"), description,
    h("p", {}, h("button", { class: "primary", type: "submit" }, "Take snapshot")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (!NAME.test(name.value)) {
      name.setAttribute("aria-invalid", "true");
      error.textContent = "Snapshot names are 1–40 letters, digits, '-', '_' or '.'.";
      name.focus();
      return;
    }
    name.removeAttribute("aria-invalid");
    try {
      const { task } = await api("POST", `/guests/${guest.id}/snapshots`, { name: name.value, description: description.value });
      progress.textContent = `Taking snapshot "${name.value}"… (task ${task.id})`;
      name.value = "";
      description.value = "";
    } catch (failure) {
      error.textContent = failure.message;
    }
  });

  async function refresh() {
    try {
      const { items } = await api("GET", `/guests/${guest.id}/snapshots`);
      tree.replaceChildren(items.length === 0 ? h("p", { class: "muted" }, "No snapshots yet.") : renderTree(items));
    } catch (failure) {
      tree.replaceChildren(h("p", { class: "error" }, failure.message));
    }
  }

  function renderTree(items) {
    const children = new Map();
    for (const item of items) {
      const key = item.parent ?? "";
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(item);
    }
    const known = new Set(items.map((item) => item.name));
    const roots = items.filter((item) => !item.parent || !known.has(item.parent));
    const branch = (list) => h("ul", { class: "tree" }, list.map((item) => h("li", {}, row(item), children.has(item.name) ? branch(children.get(item.name)) : null)));
    return branch(roots);
  }

  function row(item) {
    const rowError = h("span", { class: "error", role: "alert" });
    const restore = h("button", { class: "secondary", type: "button", "aria-label": `Restore snapshot ${item.name}` }, "Restore");
    restore.addEventListener("click", async () => {
      rowError.textContent = "";
      try {
        const { task } = await api("POST", `/guests/${guest.id}/snapshots/${encodeURIComponent(item.name)}/restore`);
        progress.textContent = `Restoring "${item.name}"… (task ${task.id})`;
      } catch (failure) { rowError.textContent = failure.message; }
    });
    const remove = h("button", { class: "danger", type: "button", "aria-label": `Delete snapshot ${item.name}` }, "Delete");
    remove.addEventListener("click", async () => {
      rowError.textContent = "";
      if (!window.confirm(`Delete snapshot "${item.name}"? Its children move up to its parent.`)) return;
      try { await api("DELETE", `/guests/${guest.id}/snapshots/${encodeURIComponent(item.name)}`); refresh(); } catch (failure) { rowError.textContent = failure.message; }
    });
    const edit = h("button", { class: "secondary", type: "button", "aria-label": `Edit description of ${item.name}` }, "Edit");
    edit.addEventListener("click", async () => {
      const text = window.prompt(`Description of "${item.name}"`, item.description);
      if (text === null) return;
      try { await api("PATCH", `/guests/${guest.id}/snapshots/${encodeURIComponent(item.name)}`, { description: text }); refresh(); } catch (failure) { rowError.textContent = failure.message; }
    });
    return h("div", { class: "snapshot" + (item.current ? " current" : "") },
      h("strong", {}, item.name), item.current ? h("span", { class: "tag" }, "current") : null,
      h("span", { class: "muted small" }, ` ${new Date(item.createdAt).toLocaleString()} · ${formatBytes(item.sizeBytes)} · ${item.machineType} · release ${item.release}`),
      item.description ? h("div", { class: "small" }, item.description) : null,
      h("div", { class: "actions compact" }, restore, edit, remove, rowError));
  }

  refresh();
  const element = h("section", { class: "card", "aria-labelledby": "snapshots-h" },
    h("h2", { id: "snapshots-h" }, "Snapshots"), tree, progress, form, error);
  return {
    element,
    refresh,
    task: (task) => {
      if (task.kind !== "snapshot" && task.kind !== "restore") return;
      const verb = task.kind === "snapshot" ? "Snapshot" : "Restore";
      if (task.status === "succeeded") { progress.textContent = `${verb} finished.`; refresh(); }
      else if (task.status === "failed") { progress.textContent = ""; error.textContent = `${verb} failed: ${task.error}`; }
      else progress.textContent = `${verb}: ${Math.round((task.progress || 0) * 100)}%`;
    },
  };
}
