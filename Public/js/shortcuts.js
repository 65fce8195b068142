// Keyboard shortcuts (Gmail/GitHub style: "g" then a letter goes somewhere), listed on a help
// overlay that "?" opens. None act while the focus is in a field, a select or the console.
import { h } from "./dom.js";

const GO = {
  o: ["#/", "Overview"],
  g: ["#/guests", "Guests"],
  t: ["#/tasks", "Tasks"],
  m: ["#/machine-types", "Machine types"],
  h: ["#/host", "Host"],
};

export const SHORTCUTS = [
  ...Object.entries(GO).map(([key, [, name]]) => [`g ${key}`, `Go to ${name}`]),
  ["/", "Search the list on this page"],
  ["?", "Show this help"],
  ["Esc", "Close a dialog or this help"],
];

let pendingG = 0;
let helpDialog = null;

function typing(target) {
  if (!(target instanceof Element)) return false;
  return target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true'], .terminal, dialog") !== null;
}

export function showHelp() {
  if (helpDialog) return;
  const close = h("button", { class: "secondary", type: "button", id: "help-close" }, "Close");
  helpDialog = h("dialog", { class: "dialog", id: "help", "aria-labelledby": "help-title" },
    h("h2", { id: "help-title" }, "Keyboard shortcuts"),
    h("table", { class: "shortcuts" },
      h("tbody", {}, SHORTCUTS.map(([keys, what]) => h("tr", {},
        h("th", { scope: "row" }, keys.split(" ").map((key, i) => [i ? " then " : "", h("kbd", {}, key)])),
        h("td", {}, what))))),
    h("p", { class: "muted small" }, "In the serial console every key goes to the guest; Shift+Tab leaves it."),
    h("div", { class: "actions" }, close));
  close.addEventListener("click", () => helpDialog.close());
  helpDialog.addEventListener("close", () => { helpDialog.remove(); helpDialog = null; });
  document.body.append(helpDialog);
  helpDialog.showModal();
  close.focus();
}

/** Installs the shortcuts; `enabled()` says whether the user is logged in. */
export function installShortcuts(enabled) {
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target) || !enabled()) return;
    if (event.key === "?") { event.preventDefault(); showHelp(); return; }
    if (event.key === "/") {
      const search = document.querySelector("main input[type=search]");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
      return;
    }
    if (pendingG && Date.now() - pendingG < 1500 && GO[event.key]) {
      event.preventDefault();
      pendingG = 0;
      location.hash = GO[event.key][0];
      return;
    }
    pendingG = event.key === "g" ? Date.now() : 0;
  });
}
