// The serial console's terminal: xterm.js from Debian's node-xterm, bundled at build time with
// Debian's esbuild into /vendor/xterm.js (scripts/bundle-terminal; nothing of it is committed).
// Around it: copy and paste that work on every browser, the terminal's size kept to its frame,
// and on phones a text field that opens the soft keyboard (xterm.js 3.8 reads key events only).

const PHONE = "(max-width: 600px)";
let bundle = null;

/** The bundle, loaded once on first use; a missing one says how to build it. */
function loadXterm() {
  if (!bundle) {
    bundle = import("/vendor/xterm.js").catch(() => {
      throw new Error("The terminal is not built: run make (scripts/bundle-terminal bundles Debian's node-xterm with esbuild).");
    });
  }
  return bundle;
}

export class Terminal {
  /**
   * The whole interface the console page uses: build it on an element (its id is kept), put
   * `element` in the page, `write` output, get typed input from `onData`, `dispose` it.
   */
  constructor(screen, { scrollback = 5000, onData = () => {}, onError = () => {} } = {}) {
    this.onData = onData;
    this.queue = [];
    this.xterm = null;
    this.screen = document.createElement("div");
    this.screen.id = screen.id || "console";
    this.screen.className = "terminal";
    this.screen.setAttribute("aria-label", screen.getAttribute("aria-label") || "Terminal");
    // Tests read the whole buffer (the canvas holds no text), and a cell's colour.
    this.screen.readText = () => this.text;
    this.screen.readForeground = (row, column) => this.foreground(row, column);
    this.screen.readScreen = () => this.visibleRows();
    this.size = document.createElement("span");
    this.size.className = "muted small terminal-size";
    this.size.id = `${this.screen.id}-size`;
    this.phone = document.createElement("input");
    this.phone.id = `${this.screen.id}-phone`;
    this.phone.className = "terminal-phone";
    for (const [name, value] of Object.entries({ type: "text", "aria-label": "Type into the console", placeholder: "Type here; Enter sends",
      autocapitalize: "off", autocomplete: "off", autocorrect: "off", spellcheck: "false", enterkeyhint: "send" })) {
      this.phone.setAttribute(name, value);
    }
    this.phone.addEventListener("input", (event) => this.typed(event));
    this.phone.addEventListener("keydown", (event) => this.phoneKey(event));
    const copy = button("Copy", "Copy the selection (Ctrl+Shift+C)", () => this.copy());
    const paste = button("Paste", "Paste the clipboard (Ctrl+Shift+V)", () => this.paste());
    this.element = document.createElement("div");
    this.element.className = "terminal-wrap";
    const tools = document.createElement("div");
    tools.className = "terminal-tools";
    tools.append(copy, paste, this.size);
    screen.replaceWith(this.element);
    this.element.append(this.screen, this.phone, tools);
    // On a phone a tap on the screen means "type": the field opens the soft keyboard.
    this.screen.addEventListener("click", () => {
      if (window.matchMedia(PHONE).matches && !this.selection()) this.phone.focus({ preventScroll: true });
    });
    this.resizeObserver = new ResizeObserver(() => this.fit());
    loadXterm().then(({ Terminal: XTerm }) => {
      if (this.disposed) return;
      // The canvas renderer: the DOM one injects <style> elements, which the pages' CSP
      // (style-src 'self') refuses. Text for tests and copying comes from the buffer (`text`).
      const xterm = new XTerm({ scrollback, rendererType: "canvas", cursorBlink: true, convertEol: false,
        fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace', fontSize: window.matchMedia(PHONE).matches ? 12 : 14 });
      xterm.open(this.screen);
      xterm.textarea.id = `${this.screen.id}-input`;
      xterm.on("data", (data) => this.onData(data));
      xterm.on("resize", ({ cols, rows }) => { this.size.textContent = `${cols}×${rows}`; });
      xterm.attachCustomKeyEventHandler((event) => this.shortcut(event));
      this.xterm = xterm;
      this.fit();
      this.resizeObserver.observe(this.screen);
      for (const data of this.queue) xterm.write(data);
      this.queue = [];
    }).catch((error) => onError(error));
  }

  get text() {
    if (!this.xterm) return this.queue.join("");
    const buffer = this.xterm._core.buffer;
    const lines = [];
    for (let i = 0; i < buffer.lines.length; i++) lines.push(buffer.translateBufferLineToString(i, true));
    // The cursor's row keeps the blanks up to the cursor: a prompt reads "=> ", as on screen.
    const cursorRow = buffer.ybase + buffer.y;
    if (cursorRow < lines.length) {
      lines[cursorRow] = buffer.translateBufferLineToString(cursorRow, false).slice(0, Math.max(lines[cursorRow].length, buffer.x));
    }
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines.join("\n");
  }

  /** The palette index of the colour a visible cell is drawn in (SGR 30–37: 0–7), -1 for the default. */
  /** The rows on screen now, top to bottom (a full-screen program's frame, without the scrollback). */
  visibleRows() {
    if (!this.xterm) return [];
    const buffer = this.xterm._core.buffer;
    const rows = [];
    for (let i = 0; i < this.xterm.rows; i++) rows.push(buffer.translateBufferLineToString(buffer.ydisp + i, true));
    return rows;
  }

  foreground(row, column) {
    if (!this.xterm) return -1;
    const buffer = this.xterm._core.buffer;
    const cell = buffer.lines.get(buffer.ydisp + row).get(column);
    const fg = (cell[0] >> 9) & 0x1ff; // CharData [attr, char, width, code]; attr = flags | fg << 9 | bg
    return fg >= 256 ? -1 : fg;
  }

  write(data) {
    if (this.xterm) this.xterm.write(data);
    else this.queue.push(data);
  }

  focus() {
    if (window.matchMedia(PHONE).matches) this.phone.focus({ preventScroll: true });
    else this.xterm?.focus();
  }

  fit() {
    if (!this.xterm || this.screen.clientWidth === 0) return;
    this.xterm.fit();
    this.size.textContent = `${this.xterm.cols}×${this.xterm.rows}`;
  }

  dispose() {
    this.disposed = true;
    this.onData = () => {};
    this.resizeObserver.disconnect();
    this.xterm?.dispose();
  }

  selection() {
    return this.xterm?.hasSelection() ? this.xterm.getSelection() : String(window.getSelection());
  }

  /** Ctrl+Shift+C and Ctrl+Shift+V copy and paste, as desktop terminals do; Ctrl+C stays ^C. */
  shortcut(event) {
    if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey) return true;
    if (event.key === "C" || event.key === "c") { this.copy(); event.preventDefault(); return false; }
    if (event.key === "V" || event.key === "v") { this.paste(); event.preventDefault(); return false; }
    return true;
  }

  async copy() {
    const text = this.selection();
    if (!text) return;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Without the asynchronous clipboard (no secure context): the old way, through a field.
      const field = document.createElement("textarea");
      field.value = text;
      document.body.append(field);
      field.select();
      document.execCommand("copy");
      field.remove();
    }
    this.xterm?.focus();
  }

  async paste() {
    try {
      this.send(await navigator.clipboard.readText());
    } catch {
      this.phone.focus(); // the browser refused: a paste (Ctrl+V, long press) into the field still works
    }
  }

  /** What a soft keyboard, dictation or an IME put into the phone field. */
  typed(event) {
    if (event.isComposing) return;
    if (event.inputType && event.inputType.startsWith("delete")) this.send("\x7f");
    else if (event.inputType === "insertLineBreak") this.send("\r");
    else this.send(this.phone.value);
    this.phone.value = "";
  }

  phoneKey(event) {
    const keys = { Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: "\x1b", ArrowUp: "\x1b[A", ArrowDown: "\x1b[B" };
    // Backspace on an empty field gives no input event; Enter none either.
    if (keys[event.key] && !(event.key === "Backspace" && this.phone.value !== "")) {
      event.preventDefault();
      this.send(keys[event.key]);
    } else if (event.ctrlKey && event.key.length === 1 && /[a-z]/i.test(event.key)) {
      event.preventDefault();
      this.send(String.fromCharCode(event.key.toUpperCase().charCodeAt(0) - 64));
    }
  }

  send(text) {
    if (text) this.onData(text.replace(/\r?\n/g, "\r"));
  }
}

function button(label, title, action) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = "secondary small";
  element.textContent = label;
  element.title = title;
  element.addEventListener("click", action);
  return element;
}
