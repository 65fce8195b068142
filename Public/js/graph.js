// A small line graph in SVG (attributes only, no inline style): the last minutes of one figure,
// its current value, and a text alternative that says the same for screen readers.
import { h, svg, setText } from "./dom.js";

const WIDTH = 300;
const HEIGHT = 80;

/**
 * `format(value)` renders a value with its unit; `span` is how many seconds the x axis shows;
 * `clock()` is the server's time now (seconds), or null while it is not known.
 */
export function lineGraph({ id, title, format, span = 300, staleAfter = 5, clock = () => null }) {
  const line = svg("polyline", { class: "graph-line", points: "", fill: "none" });
  const area = svg("polygon", { class: "graph-area", points: "" });
  const top = h("span", { class: "graph-max muted small" });
  const now = h("strong", { class: "graph-now" }, "—");
  const picture = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", class: "graph-svg", "aria-hidden": "true" },
    svg("line", { class: "graph-grid", x1: 0, y1: HEIGHT / 2, x2: WIDTH, y2: HEIGHT / 2 }), area, line);
  const figure = h("figure", { class: "graph", id, "data-samples": "0", role: "img", "aria-label": `${title}: no samples yet` },
    h("figcaption", {}, h("span", {}, title), " ", now), picture, top);
  let points = [];

  function draw() {
    if (points.length === 0) return;
    const end = points[points.length - 1].time;
    // The window grows with the history, from ten seconds up to `span`: a young graph fills its box.
    const width = Math.min(span, Math.max(10, end - points[0].time));
    const shown = points.filter((p) => p.time >= end - width);
    const max = Math.max(...shown.map((p) => p.value), 0);
    const scale = max > 0 ? max * 1.1 : 1;
    const xy = shown.map((p) => [WIDTH - ((end - p.time) / width) * WIDTH, HEIGHT - (p.value / scale) * HEIGHT]);
    const text = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
    line.setAttribute("points", text);
    area.setAttribute("points", xy.length ? `${xy[0][0].toFixed(1)},${HEIGHT} ${text} ${WIDTH},${HEIGHT}` : "");
    const current = shown[shown.length - 1].value;
    // Samples that stopped coming (the guest stopped or went away) are history, not "now". The
    // server's clock says so (a browser's may differ from it).
    const serverNow = clock();
    if (serverNow !== null && serverNow - end > staleAfter) {
      setText(now, "—");
      setText(top, `max ${format(max)}; no samples since ${new Date(end * 1000).toLocaleTimeString()}`);
      figure.setAttribute("data-samples", String(points.length));
      figure.setAttribute("aria-label", `${title}: no current samples; at most ${format(max)} before ${new Date(end * 1000).toLocaleTimeString()}`);
      return;
    }
    setText(now, format(current));
    setText(top, `max ${format(max)}`);
    figure.setAttribute("data-samples", String(points.length));
    figure.setAttribute("aria-label", `${title}: ${format(current)} now, at most ${format(max)} over the last ${Math.round(width / 60)} minute${Math.round(width / 60) === 1 ? "" : "s"}`);
  }

  return {
    element: figure,
    /** Replaces the history: [{time (s), value}], oldest first. */
    set(list) { points = list.slice(); draw(); },
    /** Draws again, so a graph whose samples stopped says so. */
    refresh() { draw(); },
    push(point) {
      if (points.length && point.time <= points[points.length - 1].time) return;
      points.push(point);
      const cutoff = point.time - span * 2;
      while (points.length && points[0].time < cutoff) points.shift();
      draw();
    },
  };
}
