import { api } from "../api.js";
import { h, formatTime, fill } from "../dom.js";
import { confirmAction } from "../dialog.js";
import { guestName, learnGuests } from "../names.js";
import { migrationFigures } from "./migrate-figures.js";
import { summary } from "./tasks.js";

/** One task: what it is, its progress and result, and its log, which grows live while it runs. */
export async function renderTask(main, id) {
  const [task, log] = await Promise.all([api("GET", `/tasks/${encodeURIComponent(id)}`), api("GET", `/tasks/${encodeURIComponent(id)}/log`)]);
  if (task.guestId && !guestName(task.guestId)) {
    try { learnGuests([await api("GET", `/guests/${task.guestId}`)]); } catch { /* deleted */ }
  }
  const heading = h("h1", {});
  const facts = h("dl", { class: "kv" });
  const figures = h("dl", { class: "kv small", id: "task-figures" });
  const figuresCard = h("section", { class: "card", "aria-labelledby": "task-figures-h" }, h("h2", { id: "task-figures-h" }, "Transfer"), figures);
  const bar = h("progress", { max: 1, value: 0, "aria-label": "Progress" });
  const error = h("p", { class: "error", role: "alert" });
  const cancel = h("button", { class: "danger", type: "button", id: "task-cancel" }, "Cancel task");
  const lines = h("ol", { class: "task-log", id: "task-log", "aria-live": "polite", "aria-relevant": "additions" });
  const follow = h("input", { type: "checkbox", id: "task-log-follow", checked: true });
  let lastSeq = 0;
  let current = task;

  function showTask(value) {
    current = value;
    fill(heading, `Task: ${value.kind} `, h("span", { class: `status ${value.status}`, id: "task-status" }, value.status));
    fill(facts,
      h("dt", {}, "Id"), h("dd", {}, h("code", {}, value.id)),
      h("dt", {}, "Guest"), h("dd", {}, value.guestId ? h("a", { href: `#/guests/${value.guestId}` }, guestName(value.guestId) || value.guestId) : "—"),
      h("dt", {}, "Started"), h("dd", {}, formatTime(value.createdAt)),
      h("dt", {}, "Last change"), h("dd", {}, formatTime(value.updatedAt)),
      h("dt", {}, "Result"), h("dd", {}, value.error ? h("span", { class: "error" }, value.error) : (summary(value) || (value.status === "succeeded" ? "done" : "—"))));
    bar.value = value.progress || 0;
    const transfer = value.detail && (value.detail.ram ? value.detail : value.detail.transfer);
    // A transfer cancelled before it measured anything reports only zeros: nothing to show.
    const measured = transfer && transfer.ram && transfer.ram.total > 0;
    fill(figures, ...(measured ? migrationFigures(transfer, value.status) : []));
    figuresCard.hidden = !measured;
    cancel.hidden = value.status !== "queued" && value.status !== "running";
  }

  function append(items) {
    const atBottom = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 4;
    for (const line of items) {
      if (line.seq <= lastSeq) continue;
      lastSeq = line.seq;
      lines.append(h("li", { "data-seq": line.seq },
        h("time", { datetime: line.time }, new Date(line.time).toLocaleTimeString()), " ", line.message));
    }
    if (follow.checked && atBottom) lines.scrollTop = lines.scrollHeight;
  }

  // Events may have gone by between the first read and now: read what follows the last line.
  async function catchUp() {
    try { append((await api("GET", `/tasks/${encodeURIComponent(id)}/log?since=${lastSeq}`)).items); } catch { /* shown on reload */ }
  }

  cancel.addEventListener("click", async () => {
    error.textContent = "";
    const sure = await confirmAction({ title: `Cancel this ${current.kind}?`, confirm: "Cancel task",
      message: current.kind === "migrate" ? "The guest keeps running here, as before the migration." : "The task stops where it is; nothing it did is kept." });
    if (!sure) return;
    try { await api("DELETE", `/tasks/${encodeURIComponent(id)}`); } catch (failure) { error.textContent = failure.message; }
  });

  showTask(task);
  append(log.items);
  catchUp();
  fill(main,
    h("p", {}, h("a", { href: "#/tasks" }, "← Tasks")),
    heading,
    h("section", { class: "card", "aria-labelledby": "task-facts-h" }, h("h2", { id: "task-facts-h" }, "Details"), facts, bar,
      h("div", { class: "actions" }, cancel), error),
    h("section", { class: "card", "aria-labelledby": "task-log-h" },
      h("h2", { id: "task-log-h" }, "Log"),
      h("label", { class: "inline small" }, follow, " Follow new lines"),
      lines),
    figuresCard);

  return {
    onEvent: async (event) => {
      if (event.subject !== id || !event.type.startsWith("task.")) return;
      if (event.type === "task.log") {
        if (event.data.seq === lastSeq + 1) append([event.data]); else catchUp();
        return;
      }
      if (event.type === "task.progress") { showTask({ ...current, ...event.data, id: current.id }); return; }
      try { showTask(await api("GET", `/tasks/${encodeURIComponent(id)}`)); } catch { /* gone */ }
    },
  };
}
