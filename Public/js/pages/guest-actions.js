import { api } from "../api.js";
import { h } from "../dom.js";

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

/** Buttons for the actions legal in the guest's state; an error shows next to them. */
export function guestActions(guest, { compact = false } = {}) {
  const error = h("span", { class: "error", role: "alert" });
  const buttons = ACTIONS[guest.state].map((action) => {
    const button = h("button", { class: action === "stop" ? "danger" : "secondary", type: "button",
      "aria-label": `${LABELS[action]} ${guest.name}` }, LABELS[action]);
    button.addEventListener("click", async () => {
      error.textContent = "";
      button.disabled = true;
      try {
        await api("POST", `/guests/${guest.id}/${action}`);
      } catch (failure) {
        error.textContent = failure.message;
        button.disabled = false;
      }
    });
    return button;
  });
  return h("div", { class: compact ? "actions compact" : "actions" }, buttons, error);
}
