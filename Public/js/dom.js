// Tiny DOM helpers: build elements without innerHTML, so server text is never parsed as markup.

const SVG = "http://www.w3.org/2000/svg";

function append(element, children) {
  // Deeply: a page may pass lists of lists (rows of cells, "a, b" runs of links).
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/**
 * Replaces an element's children, skipping null/false and flattening lists like `h` does
 * (`replaceChildren` would show a null as the text "null").
 */
export function fill(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  return append(element, children);
}

/** An SVG element (graphs); attributes only, no inline style, so a strict CSP allows it. */
export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) element.setAttribute(name, String(value));
  }
  return append(element, children);
}

export function errorText(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}

export function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(bytes) || 0, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** 1234567 → "1.23 M": rates on graph axes and in tables. */
export function formatCount(value) {
  const n = Number(value) || 0;
  const steps = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, suffix] of steps) if (Math.abs(n) >= size) return `${(n / size).toFixed(n / size >= 100 ? 0 : 2)} ${suffix}`;
  return n >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1);
}

export function formatTime(value) {
  if (value === undefined || value === null || value === "") return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "—" : date.toLocaleString();
}

/** A value for display: "—" for what the API left out, never "null" or "undefined". */
export function shown(value, suffix = "") {
  return value === undefined || value === null || value === "" || Number.isNaN(value) ? "—" : `${value}${suffix}`;
}

/** Replaces an element's children unless they would be the same text (no flicker, no lost selection). */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}
