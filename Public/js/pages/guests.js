import { api } from "../api.js";
import { h, formatCount, fill } from "../dom.js";
import { confirmAction, askValue } from "../dialog.js";
import { hostInfo, memoryLimits } from "../host-info.js";
import { listView } from "../list.js";
import { learnGuests } from "../names.js";
import { stateBadge, guestActions, stateSince } from "./guest-actions.js";

const NAME = /^[A-Za-z0-9._-]{1,40}$/;
const STATES = ["running", "paused", "stopped", "migrating", "migrated"];

/** Guests: the list (search, filter, sort, bulk actions, live CPU) and the create form. */
export async function renderGuests(main) {
  const [guests, images, types, host] = await Promise.all([
    api("GET", "/guests"), api("GET", "/images"), api("GET", "/machine-types?backend=builtin").catch(() => ({ items: [] })),
    hostInfo().catch(() => null),
  ]);
  learnGuests(guests.items);
  // Live figures keep their own elements, reused when a row is rebuilt.
  const cpu = new Map();
  const cpuCell = (guest) => {
    if (!cpu.has(guest.id)) cpu.set(guest.id, { value: -1, element: h("span", { class: "cpu" }, "—") });
    return cpu.get(guest.id).element;
  };
  const list = listView({
    name: "guests", caption: "Guests", selectable: true, emptyText: "No guests yet. Create one below.",
    searchLabel: "Search guests (name, image, machine type)",
    searchText: (guest) => `${guest.name}\n${guest.image}\n${guest.machineType}\n${guest.id}`,
    filters: [{ id: "state", label: "State", options: [["", "All states"], ...STATES.map((s) => [s, s])], test: (guest, state) => guest.state === state }],
    columns: [
      { key: "name", label: "Name", value: (g) => g.name, cell: (g) => h("a", { href: `#/guests/${g.id}` }, g.name) },
      { key: "image", label: "Image", value: (g) => g.image, cell: (g) => g.image },
      { key: "machineType", label: "Machine type", value: (g) => g.machineType, cell: (g) => g.machineType },
      { key: "memory", label: "Memory", value: (g) => g.memoryMiB, cell: (g) => `${g.memoryMiB} MiB` },
      { key: "state", label: "State", value: (g) => g.state, cell: (g) => stateBadge(g.state) },
      { key: "cpu", label: "Host CPU", value: (g) => (cpu.has(g.id) ? cpu.get(g.id).value : -1), cell: cpuCell },
      { key: "actions", label: "Actions", sortable: false, value: () => "", cell: (g) => guestActions(g, { compact: true }) },
    ],
  });
  list.set(guests.items);

  const bulk = bulkActions(list);
  fill(main, h("h1", {}, "Guests"), bulk.element, list.element, createForm(images.items, types.items, host));

  async function refreshGuest(id) {
    try {
      const guest = await api("GET", `/guests/${id}`);
      learnGuests([guest]);
      list.update(guest);
    } catch (failure) {
      if (failure.status === 404) list.remove(id);
    }
  }

  return {
    // Only the row that changed is touched: the create form and the selection stay as they are.
    onEvent: (event) => {
      if (event.type === "metrics") {
        for (const [id, entry] of cpu) {
          const sample = event.data.guests[id];
          entry.value = sample ? sample.cpuPercent : -1;
          const text = sample ? `${sample.cpuPercent.toFixed(0)} % · ${formatCount(sample.instructionsPerSecond)} IPS` : "—";
          if (entry.element.textContent !== text) entry.element.textContent = text;
        }
        return;
      }
      // A snapshot taken or restored changes what the guest's state descends from.
      if (!(event.type.startsWith("guest.") || event.type.startsWith("snapshot.")) || !event.subject) return;
      if (event.type === "guest.deleted") list.remove(event.subject);
      else refreshGuest(event.subject);
    },
  };
}

/** Start, stop or snapshot every selected guest that can, saying which were skipped and why. */
function bulkActions(list) {
  const status = h("p", { class: "small", id: "bulk-status", role: "status" });
  const count = h("span", { class: "muted small", id: "bulk-count" }, "Select guests to act on several at once.");
  const start = h("button", { class: "secondary", type: "button", id: "bulk-start", disabled: true }, "Start");
  const stop = h("button", { class: "danger", type: "button", id: "bulk-stop", disabled: true }, "Stop");
  const snapshot = h("button", { class: "secondary", type: "button", id: "bulk-snapshot", disabled: true }, "Snapshot…");
  list.onSelectionChange((selected) => {
    start.disabled = stop.disabled = snapshot.disabled = selected.length === 0;
    count.textContent = selected.length ? `${selected.length} selected:` : "Select guests to act on several at once.";
  });

  async function run(label, guests, act) {
    const results = await Promise.allSettled(guests.map(act));
    const failed = results.map((result, i) => [result, guests[i]]).filter(([result]) => result.status === "rejected");
    return `${label} ${guests.length - failed.length}` +
      (failed.length ? `; failed: ${failed.map(([result, guest]) => `${guest.name} (${result.reason.message})`).join(", ")}` : "");
  }

  function skippedText(skipped, why) {
    return skipped.length ? `; skipped ${skipped.map((g) => g.name).join(", ")} (${why})` : "";
  }

  start.addEventListener("click", async () => {
    const selected = list.selected();
    const able = selected.filter((g) => g.state === "stopped");
    status.textContent = "Starting…";
    status.textContent = await run("Started", able, (g) => api("POST", `/guests/${g.id}/start`)) +
      skippedText(selected.filter((g) => g.state !== "stopped"), "not stopped");
  });

  stop.addEventListener("click", async () => {
    const selected = list.selected();
    const able = selected.filter((g) => g.state === "running" || g.state === "paused");
    const skipped = skippedText(selected.filter((g) => !able.includes(g)), "not running or paused");
    if (able.length === 0) { status.textContent = `Nothing to stop${skipped}.`; return; }
    const confirmed = await confirmAction({
      title: `Stop ${able.length} guest${able.length === 1 ? "" : "s"}?`, confirm: "Stop guests",
      message: "Stopping ends each guest at once, like pulling the plug. Their snapshots are kept. Lost:",
      lost: able.map((g) => `${g.name}: ${stateSince(g)}`),
    });
    if (!confirmed) return;
    status.textContent = "Stopping…";
    status.textContent = await run("Stopped", able, (g) => api("POST", `/guests/${g.id}/stop`)) + skipped;
  });

  snapshot.addEventListener("click", async () => {
    const selected = list.selected();
    const able = selected.filter((g) => g.state === "running" || g.state === "paused");
    const skipped = skippedText(selected.filter((g) => !able.includes(g)), "a stopped guest has no state to save");
    if (able.length === 0) { status.textContent = `Nothing to snapshot${skipped}.`; return; }
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 13);
    const name = await askValue({
      title: `Snapshot ${able.length} guest${able.length === 1 ? "" : "s"}`, label: "Snapshot name", value: `snap-${stamp}`,
      hint: `Each of ${able.map((g) => g.name).join(", ")} gets a snapshot of this name.`, confirm: "Take snapshots",
      check: (value) => (NAME.test(value) ? "" : "Snapshot names are 1–40 letters, digits, '-', '_' or '.'."),
    });
    if (name === null) return;
    status.textContent = "Taking snapshots…";
    status.textContent = await run("Snapshots started for", able,
      (g) => api("POST", `/guests/${g.id}/snapshots`, { name, description: "taken for several guests at once" })) + skipped;
  });

  return { element: h("div", { class: "bulk actions", "aria-label": "Selected guests" }, count, start, stop, snapshot, status) };
}

function createForm(images, types, host) {
  const error = h("p", { class: "error", role: "alert", id: "create-error" });
  const allAvailable = images.filter((image) => image.available);
  let available = allAvailable.filter((item) => (item.backends || ["builtin"]).includes("builtin"));
  // QEMU's machine types are fetched when QEMU is chosen: discovery may still be probing.
  let qemuTypes = null;
  const backend = h("select", { id: "guest-backend", name: "backend" },
    h("option", { value: "builtin" }, "Built-in RISC-V core"), h("option", { value: "qemu" }, "QEMU"));
  const name = h("input", { id: "guest-name", name: "name", required: true, maxlength: 40, autocomplete: "off",
    pattern: "[A-Za-z0-9._-]{1,40}", "aria-describedby": "guest-name-help create-error" });
  const image = h("select", { id: "guest-image", name: "image", required: true },
    available.map((item) => h("option", { value: item.id }, item.name)));
  const unavailable = images.filter((item) => !item.available);
  const typeOption = (type) => h("option", { value: type.name, "data-binary": type.binary || "" },
    `${type.name}${type.alias ? ` (${type.alias})` : ""} — ${type.tier}${type.deprecated ? ", deprecated" : ""}${type.binary ? ` — ${type.binary} ${type.qemuVersion}` : ""}`);
  const machineType = h("select", { id: "guest-machine", name: "machineType", required: true }, types.map(typeOption));
  const memory = h("input", { id: "guest-memory", name: "memoryMiB", type: "number", step: 1, required: true, "aria-describedby": "guest-memory-help" });
  const memoryHelp = h("p", { class: "muted small", id: "guest-memory-help" });
  const icount = h("input", { id: "guest-icount", name: "icount", type: "checkbox" });
  // Images that bring a disk (Linux) get a size for the guest's own; the range is the host's.
  const diskRange = (host && host.limits && host.limits.diskSizeMiB) || { min: 16, max: 65536 };
  const disk = h("input", { id: "guest-disk", name: "diskSizeMiB", type: "number", step: 1, min: diskRange.min, max: diskRange.max,
    "aria-describedby": "guest-disk-help" });
  const diskField = h("div", { id: "guest-disk-field" },
    h("label", { for: "guest-disk" }, "Disk size (MiB)"), disk,
    h("p", { class: "muted small", id: "guest-disk-help" },
      `${diskRange.min}–${diskRange.max} MiB: a qcow2 disk of its own with the image's file system, allocated as it is written.`));
  const showDisk = () => {
    const chosen = available.find((item) => item.id === image.value);
    diskField.hidden = !(chosen && chosen.disk);
    if (chosen && chosen.disk) disk.value = Math.round(chosen.disk.sizeBytes / 1048576);
  };
  const limits = () => memoryLimits(host, available.find((item) => item.id === image.value), backend.value);
  const setMemoryRange = () => {
    const { min, max } = limits();
    memory.min = min;
    if (max !== null) memory.max = max; else memory.removeAttribute("max");
    memoryHelp.textContent = max !== null ? `${min}–${max} MiB on this host.` : `At least ${min} MiB.`;
  };
  image.addEventListener("change", () => {
    const chosen = available.find((item) => item.id === image.value);
    if (chosen) memory.value = chosen.defaultMemoryMiB;
    setMemoryRange();
    showDisk();
  });
  const chosen = available.find((item) => item.id === image.value);
  if (chosen) memory.value = chosen.defaultMemoryMiB;
  setMemoryRange();
  showDisk();
  const newest = types.find((type) => type.alias);
  if (newest) machineType.value = newest.name;
  // The backend decides which images boot and which machine types there are; QEMU runs on real time.
  backend.addEventListener("change", async () => {
    const qemu = backend.value === "qemu";
    error.textContent = "";
    if (qemu && qemuTypes === null) {
      try {
        qemuTypes = (await api("GET", "/machine-types?backend=qemu")).items;
      } catch (failure) {
        error.textContent = failure.message;
        qemuTypes = null;
      }
    }
    const shown = qemu ? (qemuTypes || []) : types;
    available = allAvailable.filter((item) => (item.backends || ["builtin"]).includes(backend.value));
    image.replaceChildren(...available.map((item) => h("option", { value: item.id }, item.name)));
    machineType.replaceChildren(...shown.map(typeOption));
    const preferred = qemu ? shown.find((type) => type.name === "virt") : shown.find((type) => type.alias);
    if (preferred) machineType.value = preferred.name;
    icount.disabled = qemu;
    if (qemu) icount.checked = false;
    const picked = available.find((item) => item.id === image.value);
    if (picked) memory.value = picked.defaultMemoryMiB;
    setMemoryRange();
    showDisk();
  });

  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "create-h", id: "create-guest" },
    h("h2", { id: "create-h" }, "Create a guest"),
    h("label", { for: "guest-name" }, "Name"), name,
    h("p", { class: "muted small", id: "guest-name-help" }, "1–40 letters, digits, '-', '_' or '.'"),
    h("label", { for: "guest-backend" }, "Backend"), backend,
    h("label", { for: "guest-image" }, "Image"), image,
    unavailable.length ? h("p", { class: "muted small" }, `Not available here: ${unavailable.map((item) => `${item.name} (${item.unavailableReason})`).join("; ")}`) : null,
    h("label", { for: "guest-machine" }, "Machine type"), machineType,
    h("label", { for: "guest-memory" }, "Memory (MiB)"), memory, memoryHelp,
    diskField,
    h("label", { class: "inline" }, icount, " Deterministic clock (icount): time follows retired instructions"),
    error,
    h("p", {}, h("button", { class: "primary", type: "submit" }, "Create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const { min, max } = limits();
    const mib = Number(memory.value);
    const diskMiB = Number(disk.value);
    const problem = !NAME.test(name.value) ? [name, "The name must be 1–40 letters, digits, '-', '_' or '.'."]
      : !image.value ? [image, "Choose an image."]
      : !machineType.value ? [machineType, "Choose a machine type."]
      : !(Number.isInteger(mib) && mib >= min && (max === null || mib <= max))
        ? [memory, max !== null ? `Memory must be a whole number of MiB from ${min} to ${max}.` : `Memory must be a whole number of MiB, at least ${min}.`]
      : !diskField.hidden && !(Number.isInteger(diskMiB) && diskMiB >= diskRange.min && diskMiB <= diskRange.max)
        ? [disk, `The disk must be a whole number of MiB from ${diskRange.min} to ${diskRange.max}.`] : null;
    for (const field of [name, image, machineType, memory, disk]) field.removeAttribute("aria-invalid");
    if (problem) {
      problem[0].setAttribute("aria-invalid", "true");
      error.textContent = problem[1];
      problem[0].focus();
      return;
    }
    try {
      const guest = await api("POST", "/guests", {
        name: name.value, image: image.value, machineType: machineType.value, memoryMiB: mib, icount: icount.checked,
        ...(diskField.hidden ? {} : { diskSizeBytes: diskMiB * 1048576 }),
        ...(backend.value === "qemu" ? { backend: "qemu", binary: machineType.selectedOptions[0]?.dataset.binary || undefined } : {}),
      });
      location.hash = `#/guests/${guest.id}`;
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  return form;
}
