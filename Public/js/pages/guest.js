import { api } from "../api.js";
import { h, formatBytes } from "../dom.js";
import { Terminal } from "../terminal.js";
import { stateBadge, guestActions } from "./guest-actions.js";
import { migratePanel } from "./migrate.js";
import { snapshotPanel } from "./snapshots.js";

/** One guest: state and actions, live console, snapshot tree, migration. */
export async function renderGuest(main, id) {
  const guest = await api("GET", `/guests/${id}`);
  const header = h("div", { class: "guest-header" });
  const details = h("dl", { class: "kv" });
  const deleteError = h("span", { class: "error", role: "alert" });
  const deleteButton = h("button", { class: "danger", type: "button" }, "Delete guest");

  function fill(current) {
    header.replaceChildren(h("h1", {}, current.name, " ", stateBadge(current.state)), guestActions(current));
    details.replaceChildren(
      h("dt", {}, "Machine type"), h("dd", {}, h("a", { href: `#/machine-types/${encodeURIComponent(current.machineType)}` }, current.machineType)),
      h("dt", {}, "Image"), h("dd", {}, current.image),
      h("dt", {}, "Memory"), h("dd", {}, formatBytes(current.memoryMiB * 1048576)),
      h("dt", {}, "Clock"), h("dd", {}, current.icount ? "deterministic (icount)" : "real time"),
      h("dt", {}, "Id"), h("dd", {}, h("code", {}, current.id)));
    deleteButton.disabled = !(current.state === "stopped" || current.state === "migrated");
    deleteButton.title = deleteButton.disabled ? "Stop the guest first" : "";
  }
  fill(guest);

  deleteButton.addEventListener("click", async () => {
    deleteError.textContent = "";
    if (!window.confirm(`Delete guest "${guest.name}" and all its snapshots? This cannot be undone.`)) return;
    try {
      await api("DELETE", `/guests/${id}`);
      location.hash = "#/guests";
    } catch (failure) {
      deleteError.textContent = failure.message;
    }
  });

  const console = consolePanel(guest);
  const snapshots = snapshotPanel(guest);
  const migrate = migratePanel(guest);
  main.replaceChildren(
    h("p", {}, h("a", { href: "#/guests" }, "← Guests")),
    header,
    h("section", { class: "card", "aria-labelledby": "details-h" }, h("h2", { id: "details-h" }, "Details"), details,
      h("p", {}, deleteButton, " ", deleteError)),
    console.element, snapshots.element, migrate.element);

  return {
    // Updates in place: the console keeps its scroll position and focus.
    onEvent: async (event) => {
      if (event.subject === id && event.type.startsWith("guest.")) {
        try { const current = await api("GET", `/guests/${id}`); fill(current); migrate.update(current); } catch { /* deleted */ }
      }
      if (event.type.startsWith("snapshot.") && event.data.guestId === id) snapshots.refresh();
      if (event.type.startsWith("task.") && event.data.guestId === id) { snapshots.task(event.data); migrate.task(event.data); }
    },
    dispose: () => console.dispose(),
  };
}

function consolePanel(guest) {
  const screen = h("pre", { id: "console", "aria-label": "Serial console; type here when focused" });
  const status = h("p", { class: "muted small", role: "status" });
  const error = h("p", { class: "error", role: "alert" });
  let next = 0;
  let alive = true;
  let inputQueue = Promise.resolve();
  const terminal = new Terminal(screen, {
    onData: (data) => {
      inputQueue = inputQueue.then(() => api("POST", `/guests/${guest.id}/console`, { data }))
        .then(() => { error.textContent = ""; })
        .catch((failure) => { error.textContent = failure.message; });
    },
  });
  async function poll() {
    while (alive) {
      try {
        const chunk = await api("GET", `/guests/${guest.id}/console?since=${next}&wait=20`);
        if (!alive) return;
        if (chunk.truncated) terminal.write("\r\n[… earlier output dropped …]\r\n");
        terminal.write(chunk.data);
        next = chunk.next;
        status.textContent = "";
      } catch (failure) {
        if (!alive) return;
        status.textContent = `Console: ${failure.message}; retrying…`;
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }
  poll();
  const element = h("section", { class: "card", "aria-labelledby": "console-h" },
    h("h2", { id: "console-h" }, "Serial console"),
    h("p", { class: "muted small" }, "Click the console or tab to it, then type. Shift+Tab leaves it."),
    screen, status, error);
  return { element, terminal, dispose: () => { alive = false; } };
}
