import { api } from "../api.js";
import { h, formatBytes, formatTime, fill } from "../dom.js";
import { confirmAction } from "../dialog.js";
import { watchConsole } from "../events.js";
import { resourceGraphs } from "../metrics.js";
import { learnGuests } from "../names.js";
import { Terminal } from "../terminal.js";
import { stateBadge, guestActions } from "./guest-actions.js";
import { tierBadge, TIER_PROMISE, QEMU_TIER_PROMISE, machineTypeHref } from "./machine-types.js";
import { migratePanel } from "./migrate.js";
import { snapshotPanel } from "./snapshots.js";

/** One guest: state and actions, where it went, resources, live console, snapshots, migration, its tasks. */
export async function renderGuest(main, id) {
  const [guest, tasks] = await Promise.all([api("GET", `/guests/${id}`), api("GET", `/tasks?guestId=${encodeURIComponent(id)}`).catch(() => ({ items: [] }))]);
  learnGuests([guest]);
  let type = null;
  const header = h("div", { class: "guest-header" });
  const whereabouts = h("div", { id: "guest-whereabouts" });
  const details = h("dl", { class: "kv" });
  const deleteError = h("span", { class: "error", role: "alert" });
  const deleteButton = h("button", { class: "danger", type: "button", id: "guest-delete" }, "Delete guest");
  let current = guest;
  let taskList = tasks.items;

  function showGuest(value) {
    current = value;
    fill(header, h("h1", {}, value.name, " ", stateBadge(value.state)), guestActions(value));
    fill(details,
      h("dt", {}, "Machine type"), h("dd", {}, h("a", { href: machineTypeHref({ name: value.machineType, backend: value.backend, binary: value.binary }) }, value.machineType)),
      h("dt", {}, "Backend"), h("dd", { id: "guest-runs-on" }, value.backend === "qemu" ? `QEMU (${value.binary})` : "built-in RISC-V core"),
      h("dt", {}, "Migration tier"), h("dd", { id: "guest-tier" }, type ? [tierBadge(type.tier), " ", (value.backend === "qemu" ? QEMU_TIER_PROMISE : TIER_PROMISE)[type.tier] || ""] : "—"),
      h("dt", {}, "Image"), h("dd", {}, value.image),
      h("dt", {}, "Memory"), h("dd", {}, formatBytes(value.memoryMiB * 1048576)),
      ...(value.disks && value.disks.length ? [h("dt", {}, "Disks"), h("dd", { id: "guest-disks" }, diskList(value.disks))] : []),
      h("dt", {}, "Clock"), h("dd", {}, value.icount ? "deterministic (icount)" : "real time"),
      h("dt", {}, "State descends from"), h("dd", {}, value.currentSnapshot ? `snapshot ${value.currentSnapshot}` : "a fresh start"),
      h("dt", {}, "Id"), h("dd", {}, h("code", {}, value.id)));
    deleteButton.disabled = !(value.state === "stopped" || value.state === "migrated");
    deleteButton.title = deleteButton.disabled ? "Stop the guest first" : "";
    fill(whereabouts, migratedNotice(value, taskList) || "");
  }
  showGuest(guest);
  // The tier comes with the machine type; the page does not wait for it.
  const typeQuery = guest.backend === "qemu" ? `?backend=qemu&binary=${encodeURIComponent(guest.binary || "")}` : "";
  api("GET", `/machine-types/${encodeURIComponent(guest.machineType)}${typeQuery}`).then((value) => { type = value; showGuest(current); }).catch(() => {});

  deleteButton.addEventListener("click", async () => {
    deleteError.textContent = "";
    const snapshots = await api("GET", `/guests/${id}/snapshots`).then((list) => list.items).catch(() => []);
    const lost = [current.state === "migrated" ? "this host's record of the migrated guest (the guest itself runs on where it went)" : "the guest and its settings"];
    if (snapshots.length) lost.push(`${snapshots.length} snapshot${snapshots.length === 1 ? "" : "s"}: ${snapshots.map((s) => s.name).join(", ")}`);
    const sure = await confirmAction({ title: `Delete ${current.name}?`, message: "This cannot be undone. Lost:", lost, confirm: "Delete guest" });
    if (!sure) return;
    try {
      await api("DELETE", `/guests/${id}`);
      location.hash = "#/guests";
    } catch (failure) {
      deleteError.textContent = failure.message;
    }
  });

  const graphs = guest.backend === "qemu"
    ? resourceGraphs({ guestId: id, heading: "Resources", shown: ["cpu", "rss"],
      subject: "Host CPU and resident memory of the guest's QEMU process (100 % = one core). QEMU does not report retired instructions, nor dirty pages outside a migration." })
    : resourceGraphs({ guestId: id, heading: "Resources",
      subject: "Host CPU is the guest's CPU thread (100 % = one core); resident memory is the guest RAM the host holds." });
  const serial = consolePanel(guest);
  const snapshots = snapshotPanel(guest);
  const migrate = migratePanel(guest, snapshots);
  const recent = h("ul", { id: "guest-tasks" });
  const fillTasks = () => fill(recent, ...(taskList.length === 0 ? [h("li", { class: "muted" }, "None yet.")]
    : taskList.slice(0, 8).map((task) => h("li", {}, h("a", { href: `#/tasks/${task.id}` }, task.kind), " ",
      h("span", { class: `status ${task.status}` }, task.status), " ", h("span", { class: "muted small" }, formatTime(task.createdAt))))));
  fillTasks();
  fill(main,
    h("p", {}, h("a", { href: "#/guests" }, "← Guests")),
    header, whereabouts,
    h("section", { class: "card", "aria-labelledby": "details-h" }, h("h2", { id: "details-h" }, "Details"), details,
      h("p", {}, deleteButton, " ", deleteError)),
    graphs.element, serial.element, snapshots.element, migrate.element,
    h("section", { class: "card", "aria-labelledby": "guest-tasks-h" }, h("h2", { id: "guest-tasks-h" }, "Recent tasks"), recent,
      h("p", {}, h("a", { href: "#/tasks" }, "All tasks →"))));

  async function refreshTasks() {
    try { taskList = (await api("GET", `/tasks?guestId=${encodeURIComponent(id)}`)).items; fillTasks(); showGuest(current); } catch { /* keep */ }
  }

  return {
    // Updates in place: the console keeps its scroll position and focus.
    onEvent: async (event) => {
      if (event.subject === id && event.type.startsWith("guest.")) {
        try { const value = await api("GET", `/guests/${id}`); showGuest(value); migrate.update(value); snapshots.update(value); } catch { /* deleted */ }
      }
      if (event.type.startsWith("snapshot.") && event.data.guestId === id) snapshots.refresh();
      if (event.type.startsWith("task.") && event.type !== "task.log" && event.data.guestId === id) {
        snapshots.task(event.data);
        migrate.task(event.data);
        if (event.type !== "task.progress") refreshTasks();
      }
    },
    dispose: () => { serial.dispose(); graphs.dispose(); },
  };
}

/** A migrated guest's record says where the guest went, with a link to it there. */
function migratedNotice(guest, tasks) {
  if (guest.state !== "migrated") return null;
  const done = tasks.find((task) => task.kind === "migrate" && task.status === "succeeded" && task.detail && task.detail.destination);
  if (!done) return h("p", { class: "card notice" }, "This guest was migrated to another host; it no longer runs here.");
  const base = String(done.detail.destination).replace(/\/+$/, "");
  const there = done.detail.destinationGuestId ? `${base}/#/guests/${encodeURIComponent(done.detail.destinationGuestId)}` : `${base}/`;
  return h("p", { class: "card notice", id: "migrated-to" },
    "This guest now runs on ", h("a", { href: there, id: "migrated-to-link" }, base),
    done.detail.destinationGuestId ? [" as ", h("code", {}, done.detail.destinationGuestId)] : null,
    `, since ${formatTime(done.updatedAt)}. This host keeps its record and its snapshots.`);
}

function consolePanel(guest) {
  const screen = h("div", { id: "console", "aria-label": "Serial console; type here when focused" });
  const error = h("p", { class: "error", role: "alert" });
  let inputQueue = Promise.resolve();
  const terminal = new Terminal(screen, {
    onData: (data) => {
      inputQueue = inputQueue.then(() => api("POST", `/guests/${guest.id}/console`, { data }))
        .then(() => { error.textContent = ""; })
        .catch((failure) => { error.textContent = failure.message; });
    },
    onError: (failure) => { error.textContent = failure.message; },
  });
  // On the tab's one event stream (no connection of its own), from the first byte kept.
  const stop = watchConsole(guest.id, 0, (chunk) => {
    if (chunk.truncated) terminal.write("\r\n[… earlier output dropped …]\r\n");
    terminal.write(chunk.data);
  });
  const element = h("section", { class: "card", "aria-labelledby": "console-h" },
    h("h2", { id: "console-h" }, "Serial console"),
    h("p", { class: "muted small" }, "Click or tap the console, or tab to it, then type; select to copy. Ctrl+Shift+C and Ctrl+Shift+V copy and paste."),
    terminal.element, error);
  return { element, terminal, dispose: () => { stop(); terminal.dispose(); } };
}

/** A guest's disks: size and format, and the overlay it writes (its layers below are the snapshots'). */
function diskList(disks) {
  return disks.map((disk, index) => [index ? h("br") : null,
    `${disk.id}: ${formatBytes(disk.sizeBytes)} ${disk.format}, writing `, h("code", {}, disk.overlay)]);
}
