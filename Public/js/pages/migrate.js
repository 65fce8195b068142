import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { hostInfo } from "../host-info.js";
import { migrationFigures } from "./migrate-figures.js";
import { snapshotsStayText } from "./snapshots.js";

/**
 * The pre-flight's checks, each said once: failures first (checks that fail for the same reason —
 * the static check both ways — share one line), then the passed ones folded away.
 */
export function verdictView(result) {
  const checks = result.checks || [];
  const failed = new Map(); // detail → names
  for (const check of checks.filter((c) => !c.ok)) {
    const key = check.detail || "";
    if (!failed.has(key)) failed.set(key, []);
    if (!failed.get(key).includes(check.name)) failed.get(key).push(check.name);
  }
  // Reasons that no check carries (an older peer's answer) are shown too, once.
  for (const reason of result.reasons || []) {
    if (![...failed].some(([detail, names]) => names.some((name) => reason === `${name}: ${detail}`)) && !failed.has(reason)) failed.set(reason, []);
  }
  const passed = checks.filter((c) => c.ok);
  return [
    h("p", { class: result.go ? "go" : "no-go" }, result.go ? "Go: the target can take this guest." : "No go:"),
    failed.size ? h("ul", { class: "error", id: "migrate-reasons" }, [...failed].map(([detail, names]) =>
      h("li", {}, names.length ? `✗ ${names.join(" and ")}: ${detail}` : `✗ ${detail}`))) : null,
    passed.length ? h("details", { open: result.go ? true : null },
      h("summary", {}, `${passed.length} check${passed.length === 1 ? "" : "s"} passed`),
      h("ul", {}, passed.map((c) => h("li", {}, `✓ ${c.name}: ${c.detail}`)))) : null,
  ];
}

/** Live migration: choose a target, see the pre-flight verdict, migrate with live statistics. */
export function migratePanel(guest, snapshots) {
  const peerSelect = h("select", { id: "migrate-peer" }, h("option", { value: "" }, "— give a URL and token —"));
  const url = h("input", { id: "migrate-url", type: "url", placeholder: "http://host:8080", autocomplete: "off" });
  const token = h("input", { id: "migrate-token", type: "password", autocomplete: "off" });
  const downtime = h("input", { id: "migrate-downtime", type: "number", min: 1, max: 60000, value: 300 });
  const bandwidth = h("input", { id: "migrate-bandwidth", type: "number", min: 0, value: 0 });
  const verdict = h("div", { id: "migrate-verdict", role: "status" });
  const error = h("p", { class: "error", role: "alert", id: "migrate-error" });
  const snapshotNote = h("p", { class: "muted small", id: "migrate-snapshots" });
  const check = h("button", { class: "secondary", type: "button", id: "migrate-check" }, "Check target");
  const start = h("button", { class: "primary", type: "button", id: "migrate-start", disabled: true }, "Migrate");
  const progress = h("div", { id: "migrate-progress", hidden: true });
  const bar = h("progress", { max: 1, value: 0, "aria-label": "Migration progress" });
  const stats = h("dl", { class: "kv small", id: "migrate-figures" });
  const logLink = h("p", { class: "small" });
  const apply = h("button", { class: "secondary", type: "button" }, "Apply limits");
  const cancel = h("button", { class: "danger", type: "button" }, "Cancel migration");
  progress.append(bar, stats, logLink, h("div", { class: "actions compact" }, apply, cancel));
  const form = h("div", { id: "migrate-form" });
  let approved = null;
  let taskId = null;
  let askedLimit = 300;

  hostInfo().then((host) => {
    for (const peer of host.peers || []) peerSelect.append(h("option", { value: peer.name }, `${peer.name} (${peer.url})`));
  }).catch(() => {});
  snapshots.onCount((count) => { snapshotNote.textContent = snapshotsStayText(count); });

  const target = () => (peerSelect.value ? { peer: peerSelect.value } : { url: url.value.trim(), token: token.value });
  const targetKey = () => JSON.stringify(target());
  const limits = () => ({ downtimeLimitMs: Number(downtime.value), maxBandwidth: Number(bandwidth.value) * 1048576 });
  const invalidate = () => { approved = null; start.disabled = true; verdict.replaceChildren(); };
  for (const input of [peerSelect, url, token]) input.addEventListener("input", invalidate);
  peerSelect.addEventListener("change", () => { url.disabled = token.disabled = Boolean(peerSelect.value); invalidate(); });

  function validTarget() {
    if (peerSelect.value) return true;
    try {
      const parsed = new URL(url.value.trim());
      if (!/^https?:$/.test(parsed.protocol)) throw new Error();
    } catch {
      error.textContent = "Give the target's URL, like http://127.0.0.1:8081, or pick a peer.";
      url.focus();
      return false;
    }
    if (token.value.length < 8) { error.textContent = "Give the target's admin token (8 characters or more)."; token.focus(); return false; }
    return true;
  }

  function validLimits() {
    const d = Number(downtime.value), b = Number(bandwidth.value);
    if (!Number.isInteger(d) || d < 1 || d > 60000) { error.textContent = "Downtime limit: 1 to 60000 ms."; downtime.focus(); return false; }
    if (!Number.isFinite(b) || b < 0) { error.textContent = "Bandwidth: 0 (unlimited) or more MiB/s."; bandwidth.focus(); return false; }
    return true;
  }

  check.addEventListener("click", async () => {
    error.textContent = "";
    invalidate();
    if (!validTarget() || !validLimits()) return;
    const key = targetKey();
    fill(verdict, h("p", { class: "muted" }, "Asking the target…"));
    try {
      const result = await api("POST", `/guests/${guest.id}/migrate/preflight`, { target: target(), ...limits() });
      fill(verdict, ...verdictView(result));
      if (result.go) { approved = key; start.disabled = guest.state !== "running" && guest.state !== "paused"; }
    } catch (failure) {
      verdict.replaceChildren();
      error.textContent = failure.message;
    }
  });

  start.addEventListener("click", async () => {
    error.textContent = "";
    if (approved !== targetKey() || !validLimits()) { error.textContent = "Check the target again first."; start.disabled = true; return; }
    start.disabled = true;
    askedLimit = Number(downtime.value);
    try {
      const { task } = await api("POST", `/guests/${guest.id}/migrate`, { target: target(), ...limits() });
      // Its events may have come first (then they are newer than this answer).
      if (taskId !== task.id) {
        taskId = task.id;
        progress.hidden = false;
        render(task);
      }
    } catch (failure) {
      error.textContent = failure.message;
      start.disabled = false;
    }
  });

  apply.addEventListener("click", async () => {
    error.textContent = "";
    if (!taskId || !validLimits()) return;
    askedLimit = Number(downtime.value);
    try { await api("PATCH", `/tasks/${taskId}`, limits()); } catch (failure) { error.textContent = failure.message; }
  });
  cancel.addEventListener("click", async () => {
    error.textContent = "";
    if (!taskId) return;
    try { await api("DELETE", `/tasks/${taskId}`); } catch (failure) { error.textContent = failure.message; }
  });

  function render(task) {
    bar.value = task.progress || 0;
    fill(stats, ...migrationFigures(task.detail, task.status, askedLimit));
    fill(logLink, h("a", { href: `#/tasks/${task.id}`, id: "migrate-log" }, "Task log"));
    if (task.status === "failed") error.textContent = `Migration failed: ${task.error}`;
    if (task.status === "cancelled") error.textContent = "Migration cancelled; the guest keeps running here.";
    const finished = ["succeeded", "failed", "cancelled"].includes(task.status);
    apply.disabled = cancel.disabled = finished;
  }

  form.append(
    h("label", { for: "migrate-peer" }, "Peer"), peerSelect,
    h("label", { for: "migrate-url" }, "Target URL"), url,
    h("label", { for: "migrate-token" }, "Target token"), token,
    h("label", { for: "migrate-downtime" }, "Downtime limit (ms)"), downtime,
    h("label", { for: "migrate-bandwidth" }, "Bandwidth limit (MiB/s, 0 = unlimited)"), bandwidth,
    snapshotNote,
    h("div", { class: "actions" }, check, start), verdict);
  const element = h("section", { class: "card", "aria-labelledby": "migrate-h" },
    h("h2", { id: "migrate-h" }, "Migrate"), form, error, progress);
  const showForm = () => { form.hidden = guest.state === "migrated"; };
  showForm();
  return {
    element,
    update: (current) => {
      guest.state = current.state;
      if (approved && (current.state === "running" || current.state === "paused")) start.disabled = false;
      showForm();
    },
    task: (task) => { if (task.kind === "migrate" && (taskId === null || task.id === taskId)) { taskId = task.id; progress.hidden = false; render(task); } },
  };
}
