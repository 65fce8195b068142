import { api } from "../api.js";
import { h } from "../dom.js";
import { confirmAction } from "../dialog.js";

const ACTIONS = {
  stopped: ["start"],
  running: ["pause", "reset", "stop"],
  paused: ["resume", "reset", "stop"],
  migrating: [],
  migrated: [],
};

const LABELS = { start: "Start", pause: "Pause", resume: "Resume", stop: "Stop", reset: "Reset" };

export function stateBadge(state) {
  return h("span", { class: `state ${state}` }, state);
}

/** What a guest's running state is, in words: since which snapshot or since it started. */
export function stateSince(guest) {
  return guest.currentSnapshot
    ? `its memory and device state since snapshot "${guest.currentSnapshot}" was taken or restored`
    : "its memory and device state since it started";
}

/** The question asked before an action that loses the guest's state; null for harmless ones. */
export function confirmationFor(action, guest) {
  switch (action) {
    case "stop":
      return { title: `Stop ${guest.name}?`, confirm: "Stop guest",
        message: "Stopping ends the guest at once, like pulling the plug. Its snapshots are kept. Lost:",
        lost: [stateSince(guest)] };
    case "reset":
      return { title: `Reset ${guest.name}?`, confirm: "Reset guest",
        message: "Resetting reboots the guest, like its reset button. Lost:",
        lost: [stateSince(guest)] };
    default:
      return null;
  }
}

/** Runs a lifecycle action, asking first when it loses something; true when it was sent. */
export async function runAction(action, guest) {
  const question = confirmationFor(action, guest);
  if (question && !(await confirmAction(question))) return false;
  await api("POST", `/guests/${guest.id}/${action}`);
  return true;
}

/** Buttons for the actions legal in the guest's state; an error shows next to them. */
export function guestActions(guest, { compact = false } = {}) {
  const error = h("span", { class: "error", role: "alert" });
  const buttons = (ACTIONS[guest.state] || []).map((action) => {
    const button = h("button", { class: action === "stop" ? "danger" : "secondary", type: "button",
      "aria-label": `${LABELS[action]} ${guest.name}` }, LABELS[action]);
    button.addEventListener("click", async () => {
      error.textContent = "";
      button.disabled = true;
      try {
        if (!(await runAction(action, guest))) button.disabled = false;
      } catch (failure) {
        error.textContent = failure.message;
        button.disabled = false;
      }
    });
    return button;
  });
  return h("div", { class: compact ? "actions compact" : "actions" }, buttons, error);
}
