import { api } from "../api.js";
import { h, formatBytes, formatTime, fill } from "../dom.js";
import { confirmAction, askValue } from "../dialog.js";
import { stateSince } from "./guest-actions.js";

const NAME = /^[A-Za-z0-9._-]{1,40}$/;

/** What migrating does with a guest's snapshots, said where it matters (migrate panel, migrated guest). */
export function snapshotsStayText(count) {
  return count === 0 ? "This guest has no snapshots."
    : `Snapshots are not moved: this guest's ${count} snapshot${count === 1 ? " stays" : "s stay"} on this host, ` +
      "kept with its record here, and can be restored only here. Delete the migrated record here to remove them.";
}

/** A guest's snapshots as a tree, with create, restore, edit description and delete. */
export function snapshotPanel(guest) {
  let current = guest;
  let items = [];
  // Tasks whose end was already heard: a POST's answer can come after its task's last event.
  const ended = new Set();
  const started = (task, text) => { if (!ended.has(task.id)) fill(progress, text, h("a", { href: `#/tasks/${task.id}` }, "View log")); };
  const countListeners = [];
  const tree = h("div", { id: "snapshot-tree" });
  const note = h("p", { class: "muted small", id: "snapshot-note" });
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
      started(task, `Taking snapshot "${name.value}"… `);
      name.value = "";
      description.value = "";
    } catch (failure) {
      error.textContent = failure.message;
    }
  });

  function showNote() {
    note.textContent = current.state === "migrated" && items.length ? snapshotsStayText(items.length) : "";
    form.hidden = current.state === "migrated";
  }

  async function refresh() {
    try {
      items = (await api("GET", `/guests/${guest.id}/snapshots`)).items;
      fill(tree, items.length === 0 ? h("p", { class: "muted" }, "No snapshots yet.") : renderTree(items));
      for (const listener of countListeners) listener(items.length);
    } catch (failure) {
      fill(tree, h("p", { class: "error" }, failure.message));
    }
    showNote();
  }

  function renderTree(list) {
    const children = new Map();
    for (const item of list) {
      const key = item.parent ?? "";
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(item);
    }
    const known = new Set(list.map((item) => item.name));
    const roots = list.filter((item) => !item.parent || !known.has(item.parent));
    const branch = (nodes) => h("ul", { class: "tree" }, nodes.map((item) => h("li", {}, row(item), children.has(item.name) ? branch(children.get(item.name)) : null)));
    return branch(roots);
  }

  function restoreQuestion(item) {
    const running = current.state === "running" || current.state === "paused";
    return {
      title: `Restore snapshot ${item.name}?`, confirm: "Restore",
      message: running ? `${current.name} goes back to snapshot "${item.name}" (taken ${formatTime(item.createdAt)}). Lost unless you take a snapshot first:`
        : `${current.name} is stopped: it starts from snapshot "${item.name}". Nothing running is lost.`,
      lost: running ? [stateSince(current)] : [],
      danger: running,
    };
  }

  function row(item) {
    const rowError = h("span", { class: "error", role: "alert" });
    const restore = h("button", { class: "secondary", type: "button", "aria-label": `Restore snapshot ${item.name}`,
      disabled: current.state === "migrated" || current.state === "migrating" }, "Restore");
    restore.addEventListener("click", async () => {
      rowError.textContent = "";
      if (!(await confirmAction(restoreQuestion(item)))) return;
      try {
        const { task } = await api("POST", `/guests/${guest.id}/snapshots/${encodeURIComponent(item.name)}/restore`);
        started(task, `Restoring "${item.name}"… `);
      } catch (failure) { rowError.textContent = failure.message; }
    });
    const remove = h("button", { class: "danger", type: "button", "aria-label": `Delete snapshot ${item.name}` }, "Delete");
    remove.addEventListener("click", async () => {
      rowError.textContent = "";
      const sure = await confirmAction({ title: `Delete snapshot ${item.name}?`, confirm: "Delete snapshot",
        message: "Its children move up to its parent. Lost:", lost: [`the state saved in "${item.name}" (${formatBytes(item.sizeBytes)})`] });
      if (!sure) return;
      try { await api("DELETE", `/guests/${guest.id}/snapshots/${encodeURIComponent(item.name)}`); refresh(); } catch (failure) { rowError.textContent = failure.message; }
    });
    const edit = h("button", { class: "secondary", type: "button", "aria-label": `Edit description of ${item.name}` }, "Edit");
    edit.addEventListener("click", async () => {
      const text = await askValue({ title: `Description of ${item.name}`, label: "Description", value: item.description, confirm: "Save",
        check: (value) => (value.length > 1000 ? "At most 1000 characters." : "") });
      if (text === null) return;
      try { await api("PATCH", `/guests/${guest.id}/snapshots/${encodeURIComponent(item.name)}`, { description: text }); refresh(); } catch (failure) { rowError.textContent = failure.message; }
    });
    return h("div", { class: "snapshot" + (item.current ? " current" : "") },
      h("strong", {}, item.name), item.current ? h("span", { class: "tag" }, "current") : null,
      h("span", { class: "muted small" }, ` ${formatTime(item.createdAt)} · ${formatBytes(item.sizeBytes)} · ${item.machineType} · release ${item.release}`),
      item.description ? h("div", { class: "small" }, item.description) : null,
      h("div", { class: "actions compact" }, restore, edit, remove, rowError));
  }

  refresh();
  const element = h("section", { class: "card", "aria-labelledby": "snapshots-h" },
    h("h2", { id: "snapshots-h" }, "Snapshots"), note, tree, progress, form, error);
  return {
    element,
    refresh,
    count: () => items.length,
    onCount: (listener) => { countListeners.push(listener); listener(items.length); },
    update: (value) => { const changed = value.state !== current.state; current = value; if (changed) refresh(); else showNote(); },
    task: (task) => {
      if (task.kind !== "snapshot" && task.kind !== "restore") return;
      const verb = task.kind === "snapshot" ? "Snapshot" : "Restore";
      const log = h("a", { href: `#/tasks/${task.id}` }, "View log");
      if (["succeeded", "failed", "cancelled"].includes(task.status)) ended.add(task.id);
      if (task.status === "succeeded") { fill(progress, `${verb} finished. `, log); refresh(); }
      else if (task.status === "failed") { progress.replaceChildren(); error.textContent = `${verb} failed: ${task.error}`; }
      else if (task.status === "cancelled") fill(progress, `${verb} cancelled. `, log);
      else fill(progress, `${verb}: ${Math.round((task.progress || 0) * 100)}% `, log);
    },
  };
}
