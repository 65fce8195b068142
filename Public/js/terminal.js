// A small terminal for the serial console: text, CR/LF, backspace, tabs and the CSI
// sequences U-Boot and OpenSBI send (erase line/display, cursor moves, SGR ignored).
// Our own because Debian's xterm.js ships as CommonJS modules that need a bundler.

const ESC = "\x1b";

export class Terminal {
  /**
   * The whole interface the console page uses (so another terminal can take its place): build it
   * on a <pre>, put `element` in the page, `write` output, get typed input from `onData`,
   * `dispose` it. Keys go to a hidden textarea over the screen, which is what lets a phone open its
   * soft keyboard (a <pre> never does) and receives what the keyboard or an IME types.
   */
  constructor(screen, { cols = 100, rows = 30, scrollback = 2000, onData = () => {} } = {}) {
    this.screen = screen;
    this.cols = cols;
    this.rows = rows;
    this.scrollback = scrollback;
    this.onData = onData;
    this.lines = [[]];
    this.cursorRow = 0; // index into this.lines
    this.cursorCol = 0;
    this.state = "text";
    this.params = "";
    this.pending = false;
    screen.classList.add("terminal");
    screen.setAttribute("role", "log");
    screen.setAttribute("aria-live", "off");
    this.input = document.createElement("textarea");
    this.input.className = "terminal-input";
    this.input.id = `${screen.id || "terminal"}-input`;
    this.input.setAttribute("aria-label", screen.getAttribute("aria-label") || "Terminal input");
    this.input.setAttribute("autocapitalize", "off");
    this.input.setAttribute("autocomplete", "off");
    this.input.setAttribute("autocorrect", "off");
    this.input.setAttribute("spellcheck", "false");
    this.input.setAttribute("enterkeyhint", "send");
    this.element = document.createElement("div");
    this.element.className = "terminal-wrap";
    screen.replaceWith(this.element);
    this.element.append(screen, this.input);
    this.input.addEventListener("keydown", (event) => this.keydown(event));
    this.input.addEventListener("input", (event) => this.typed(event));
    this.input.addEventListener("compositionend", (event) => { this.send(event.data || ""); this.input.value = ""; });
    this.input.addEventListener("paste", (event) => {
      event.preventDefault();
      this.onData(event.clipboardData.getData("text").replace(/\r?\n/g, "\r"));
    });
    // A click that selected nothing (to copy) means "type here".
    screen.addEventListener("click", () => { if (String(window.getSelection()) === "") this.focus(); });
    this.render();
  }

  focus() {
    this.input.focus({ preventScroll: true });
  }

  dispose() {
    this.onData = () => {};
  }

  /** The text on screen, for tests and screen readers' "copy all". */
  get text() {
    return this.lines.map((line) => line.join("").replace(/\s+$/, "")).join("\n");
  }

  write(data) {
    for (const ch of data) this.feed(ch);
    this.scheduleRender();
  }

  feed(ch) {
    switch (this.state) {
      case "escape":
        if (ch === "[") { this.state = "csi"; this.params = ""; }
        else if (ch === "c") { this.reset(); this.state = "text"; }
        else this.state = "text"; // other escapes (charset, keypad modes) change nothing we draw
        return;
      case "csi":
        if (/[0-9;?]/.test(ch)) { this.params += ch; return; }
        this.csi(ch, this.params);
        this.state = "text";
        return;
      default:
        break;
    }
    switch (ch) {
      case ESC: this.state = "escape"; return;
      case "\r": this.cursorCol = 0; return;
      case "\n": this.newline(); return;
      case "\b": this.cursorCol = Math.max(0, this.cursorCol - 1); return;
      case "\t": this.cursorCol = Math.min(this.cols - 1, (Math.floor(this.cursorCol / 8) + 1) * 8); return;
      case "\x07": case "\0": return;
      default: {
        if (ch < " ") return;
        if (this.cursorCol >= this.cols) { this.newline(); this.cursorCol = 0; }
        const line = this.lines[this.cursorRow];
        while (line.length < this.cursorCol) line.push(" ");
        line[this.cursorCol] = ch;
        this.cursorCol += 1;
      }
    }
  }

  newline() {
    this.cursorRow += 1;
    if (this.cursorRow >= this.lines.length) this.lines.push([]);
    if (this.lines.length > this.scrollback) {
      const drop = this.lines.length - this.scrollback;
      this.lines.splice(0, drop);
      this.cursorRow -= drop;
    }
  }

  /** First row of the visible screen, for absolute cursor positioning. */
  get top() {
    return Math.max(0, this.lines.length - this.rows);
  }

  csi(command, params) {
    const numbers = params.replace("?", "").split(";").map((p) => (p === "" ? NaN : Number(p)));
    const n = (index, fallback) => (Number.isNaN(numbers[index]) || numbers[index] === undefined ? fallback : numbers[index]);
    const line = this.lines[this.cursorRow];
    switch (command) {
      case "K": // erase in line
        if (n(0, 0) === 0) line.length = Math.min(line.length, this.cursorCol);
        else if (n(0, 0) === 1) for (let i = 0; i <= this.cursorCol && i < line.length; i++) line[i] = " ";
        else line.length = 0;
        break;
      case "J": // erase in display
        if (n(0, 0) === 2 || n(0, 0) === 3) {
          const top = this.top;
          for (let row = top; row < this.lines.length; row++) this.lines[row] = [];
          this.cursorRow = top; this.cursorCol = 0;
        } else if (n(0, 0) === 0) {
          line.length = Math.min(line.length, this.cursorCol);
          this.lines.length = this.cursorRow + 1;
        }
        break;
      case "H": case "f": { // cursor position, 1-based
        const row = this.top + Math.min(this.rows, Math.max(1, n(0, 1))) - 1;
        while (this.lines.length <= row) this.lines.push([]);
        this.cursorRow = row;
        this.cursorCol = Math.min(this.cols - 1, Math.max(1, n(1, 1)) - 1);
        break;
      }
      case "A": this.cursorRow = Math.max(this.top, this.cursorRow - n(0, 1)); break;
      case "B": this.cursorRow = Math.min(this.lines.length - 1, this.cursorRow + n(0, 1)); break;
      case "C": this.cursorCol = Math.min(this.cols - 1, this.cursorCol + n(0, 1)); break;
      case "D": this.cursorCol = Math.max(0, this.cursorCol - n(0, 1)); break;
      case "G": this.cursorCol = Math.min(this.cols - 1, Math.max(1, n(0, 1)) - 1); break;
      default: break; // m (colours), h/l (modes), s/u: nothing to draw
    }
  }

  reset() {
    this.lines = [[]];
    this.cursorRow = 0;
    this.cursorCol = 0;
  }

  keydown(event) {
    if (event.isComposing || event.metaKey || (event.ctrlKey && event.key === "v")) return; // IME, paste
    const keys = { Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: ESC, ArrowUp: `${ESC}[A`, ArrowDown: `${ESC}[B`,
      ArrowRight: `${ESC}[C`, ArrowLeft: `${ESC}[D`, Home: `${ESC}[H`, End: `${ESC}[F`, Delete: `${ESC}[3~` };
    let data = keys[event.key];
    if (!data && event.ctrlKey && event.key.length === 1 && /[a-z]/i.test(event.key)) {
      data = String.fromCharCode(event.key.toUpperCase().charCodeAt(0) - 64);
    }
    if (!data && !event.ctrlKey && !event.altKey && event.key.length === 1) data = event.key;
    // Soft keyboards send "Unidentified" keys and deliver the text as input events (typed()).
    if (!data) return;
    if (event.key === "Tab" && event.shiftKey) return; // keep Shift+Tab for leaving the terminal
    event.preventDefault();
    this.onData(data);
  }

  /** Text a soft keyboard, dictation or an IME put into the textarea (no key event for it). */
  typed(event) {
    if (event.isComposing) return;
    if (event.inputType && event.inputType.startsWith("delete")) this.send("\x7f");
    else if (event.inputType === "insertLineBreak") this.send("\r");
    else this.send(this.input.value);
    this.input.value = "";
  }

  send(text) {
    if (text) this.onData(text.replace(/\r?\n/g, "\r"));
  }

  scheduleRender() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  render() {
    const fragment = document.createDocumentFragment();
    this.lines.forEach((line, row) => {
      const text = line.join("");
      if (row === this.cursorRow) {
        const col = this.cursorCol;
        const padded = text.padEnd(col + 1, " ");
        fragment.append(padded.slice(0, col));
        const cursor = document.createElement("span");
        cursor.className = "cursor";
        cursor.textContent = padded[col];
        fragment.append(cursor, padded.slice(col + 1));
      } else {
        fragment.append(text);
      }
      if (row < this.lines.length - 1) fragment.append("\n");
    });
    const atBottom = this.screen.scrollTop + this.screen.clientHeight >= this.screen.scrollHeight - 4;
    this.screen.replaceChildren(fragment);
    if (atBottom) this.screen.scrollTop = this.screen.scrollHeight;
  }
}
