// Modal dialogs (<dialog>): confirmations that name what an action loses, and a small form.
import { h } from "./dom.js";

let open = null;

function show(dialog, focus) {
  document.body.append(dialog);
  dialog.showModal();
  (focus || dialog.querySelector("button")).focus();
}

/**
 * Asks before an action that loses something. `lost` says what, in words ("the guest's state
 * since snapshot 'boot'"); resolves true when confirmed, false when cancelled (button or Escape).
 */
export function confirmAction({ title, message, lost = [], confirm = "Confirm", danger = true }) {
  if (open) open.close("cancel");
  return new Promise((resolve) => {
    const ok = h("button", { class: danger ? "danger" : "primary", type: "button", id: "confirm-ok", value: "ok" }, confirm);
    const cancel = h("button", { class: "secondary", type: "button", id: "confirm-cancel" }, "Cancel");
    const dialog = h("dialog", { class: "dialog", id: "confirm-dialog", "aria-labelledby": "confirm-title", "aria-describedby": "confirm-message" },
      h("h2", { id: "confirm-title" }, title),
      h("div", { id: "confirm-message" },
        h("p", {}, message),
        lost.length ? h("ul", { class: "lost" }, lost.map((item) => h("li", {}, item))) : null),
      h("div", { class: "actions" }, ok, cancel));
    ok.addEventListener("click", () => dialog.close("ok"));
    cancel.addEventListener("click", () => dialog.close("cancel"));
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (open === dialog) open = null;
      resolve(dialog.returnValue === "ok");
    });
    open = dialog;
    // The safe choice has the focus: Enter alone never destroys anything.
    show(dialog, cancel);
  });
}

/**
 * Asks for one value (a snapshot name for several guests). Resolves the value, or null.
 * `check(value)` returns an error message or "".
 */
export function askValue({ title, label, value = "", hint = "", confirm = "OK", check = () => "" }) {
  if (open) open.close("cancel");
  return new Promise((resolve) => {
    const input = h("input", { id: "ask-value", value, autocomplete: "off", "aria-describedby": "ask-hint ask-error" });
    const error = h("p", { class: "error", role: "alert", id: "ask-error" });
    const cancel = h("button", { class: "secondary", type: "button", id: "ask-cancel" }, "Cancel");
    const form = h("form", { method: "dialog", novalidate: true },
      h("h2", { id: "ask-title" }, title),
      h("label", { for: "ask-value" }, label), input,
      h("p", { class: "muted small", id: "ask-hint" }, hint), error,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", id: "ask-ok" }, confirm), cancel));
    const dialog = h("dialog", { class: "dialog", id: "ask-dialog", "aria-labelledby": "ask-title" }, form);
    let result = null;
    form.addEventListener("submit", (event) => {
      const problem = check(input.value.trim());
      if (problem) { event.preventDefault(); error.textContent = problem; input.setAttribute("aria-invalid", "true"); input.focus(); return; }
      result = input.value.trim();
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { dialog.remove(); if (open === dialog) open = null; resolve(result); });
    open = dialog;
    show(dialog, input);
    input.select();
  });
}
