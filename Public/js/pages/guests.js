import { api } from "../api.js";
import { h } from "../dom.js";
import { stateBadge, guestActions } from "./guest-actions.js";

const NAME = /^[A-Za-z0-9._-]{1,40}$/;

/** Guests: the list with actions, and the create form. */
export async function renderGuests(main) {
  const [guests, images, types] = await Promise.all([
    api("GET", "/guests"), api("GET", "/images"), api("GET", "/machine-types").catch(() => ({ items: [] })),
  ]);
  const table = guests.items.length === 0
    ? h("p", { class: "muted" }, "No guests yet. Create one below.")
    : h("table", {},
        h("caption", { class: "sr-only" }, "Guests"),
        h("thead", {}, h("tr", {}, ["Name", "Image", "Machine type", "Memory", "State", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, guests.items.map((guest) => h("tr", {},
          h("td", {}, h("a", { href: `#/guests/${guest.id}` }, guest.name)),
          h("td", {}, guest.image),
          h("td", {}, guest.machineType),
          h("td", {}, `${guest.memoryMiB} MiB`),
          h("td", {}, stateBadge(guest.state)),
          h("td", {}, guestActions(guest, { compact: true }))))));
  main.replaceChildren(h("h1", {}, "Guests"), table, createForm(images.items, types.items));
  return { refreshOn: (event) => event.type.startsWith("guest.") };
}

function createForm(images, types) {
  const error = h("p", { class: "error", role: "alert", id: "create-error" });
  const available = images.filter((image) => image.available);
  const name = h("input", { id: "guest-name", name: "name", required: true, maxlength: 40, autocomplete: "off",
    pattern: "[A-Za-z0-9._-]{1,40}", "aria-describedby": "guest-name-help create-error" });
  const image = h("select", { id: "guest-image", name: "image", required: true },
    available.map((item) => h("option", { value: item.id }, item.name)));
  const unavailable = images.filter((item) => !item.available);
  const machineType = h("select", { id: "guest-machine", name: "machineType", required: true },
    types.map((type) =>
      h("option", { value: type.name }, `${type.name}${type.alias ? ` (${type.alias})` : ""} — ${type.tier}${type.deprecated ? ", deprecated" : ""}`)));
  const memory = h("input", { id: "guest-memory", name: "memoryMiB", type: "number", min: 16, max: 4096, step: 1, required: true });
  const icount = h("input", { id: "guest-icount", name: "icount", type: "checkbox" });
  const setDefaultMemory = () => {
    const chosen = available.find((item) => item.id === image.value);
    if (chosen) { memory.value = chosen.defaultMemoryMiB; memory.min = chosen.minimumMemoryMiB; }
  };
  image.addEventListener("change", setDefaultMemory);
  setDefaultMemory();
  const newest = types.find((type) => type.alias);
  if (newest) machineType.value = newest.name;

  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "create-h" },
    h("h2", { id: "create-h" }, "Create a guest"),
    h("label", { for: "guest-name" }, "Name"), name,
    h("p", { class: "muted small", id: "guest-name-help" }, "1–40 letters, digits, '-', '_' or '.'"),
    h("label", { for: "guest-image" }, "Image"), image,
    unavailable.length ? h("p", { class: "muted small" }, `Not available here: ${unavailable.map((item) => `${item.name} (${item.unavailableReason})`).join("; ")}`) : null,
    h("label", { for: "guest-machine" }, "Machine type"), machineType,
    h("label", { for: "guest-memory" }, "Memory (MiB)"), memory,
    h("label", { class: "inline" }, icount, " Deterministic clock (icount): time follows retired instructions"),
    error,
    h("p", {}, h("button", { class: "primary", type: "submit" }, "Create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const problem = !NAME.test(name.value) ? [name, "The name must be 1–40 letters, digits, '-', '_' or '.'."]
      : !image.value ? [image, "Choose an image."]
      : !machineType.value ? [machineType, "Choose a machine type."]
      : !(Number(memory.value) >= Number(memory.min) && Number(memory.value) <= 4096 && Number.isInteger(Number(memory.value)))
        ? [memory, `Memory must be a whole number of MiB from ${memory.min} to 4096.`] : null;
    for (const field of [name, image, machineType, memory]) field.removeAttribute("aria-invalid");
    if (problem) {
      problem[0].setAttribute("aria-invalid", "true");
      error.textContent = problem[1];
      problem[0].focus();
      return;
    }
    try {
      const guest = await api("POST", "/guests", {
        name: name.value, image: image.value, machineType: machineType.value,
        memoryMiB: Number(memory.value), icount: icount.checked,
      });
      location.hash = `#/guests/${guest.id}`;
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  return form;
}
