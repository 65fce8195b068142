// Live updates: one Server-Sent Events stream per tab (browsers allow six connections per host,
// shared by every tab), falling back to long polling. It carries the numbered events, the
// resource graphs' samples and the console of the guest on screen. Listeners get every message.
//
// Sequence numbers restart with every panel run; events and pages carry the run's `epoch`. A new
// epoch or a truncated page means events were missed: the cursor starts over and pages resync.
// Metrics and console messages are not numbered (seq 0): they are never replayed.
//
// A page kept in the back/forward cache, or frozen, must not hold its stream: with a few such
// pages the browser runs out of connections and every other page waits. So the stream closes on
// `pagehide`/`freeze` and opens again, where the cursors left off, on `pageshow`/`resume`.

const listeners = new Set();
let epoch = null;
let lastSeq = 0;
let generation = 0; // bumped by every (re)connect, so a loop or stream from before ends
let source = null;
let pollAbort = null;
let running = false; // started (logged in) and not suspended
let suspended = false;
let polling = false; // EventSource unusable here: long polls instead
let connectedAt = 0;
let retryTimer = null;
let failures = 0; // stream errors since it last opened
let hooks = { setStatus: () => {}, onResync: () => {}, onSignedOut: () => {} };
// The guest whose console this tab shows, and the byte offset to resume it from.
let consoleWatch = null;

export function onEvent(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** When this tab's stream first opened (ms since 1970): events before it are history. */
export function liveSince() {
  return connectedAt;
}

// The first epoch seen is adopted; a different one later means the panel restarted.
function checkRun(seen, truncated = false) {
  if (!seen) return;
  const known = epoch;
  epoch = seen;
  if (known === null || (known === seen && !truncated)) return;
  lastSeq = 0;
  if (consoleWatch) consoleWatch.next = 0;
  hooks.onResync();
}

function deliver(event) {
  for (const listener of listeners) {
    try { listener(event); } catch (error) { console.error(error); }
  }
}

function dispatch(event) {
  checkRun(event.epoch);
  if (!event.seq) {
    if (event.type === "console.output") {
      if (!consoleWatch || consoleWatch.guestId !== event.subject) return;
      if (event.data.next <= consoleWatch.next && !event.data.truncated) return;
      consoleWatch.next = event.data.next;
      consoleWatch.onOutput(event.data);
      return;
    }
    deliver(event);
    return;
  }
  if (event.seq <= lastSeq) return;
  lastSeq = event.seq;
  deliver(event);
}

/**
 * Starts (or, after a new login, restarts) live updates. `setStatus` shows the connection,
 * `onResync` reloads the page after missed events, `onSignedOut` runs when the session is gone.
 */
export function startEvents(newHooks) {
  hooks = { ...hooks, ...newHooks };
  running = true;
  connect();
}

/** Stops live updates (logged out). */
export function stopEvents() {
  running = false;
  disconnect();
}

/**
 * Streams a guest's console to `onOutput({data, next, truncated})` from byte `since`, on the
 * tab's one stream (which reopens to include it). Returns the function that stops it.
 */
export function watchConsole(guestId, since, onOutput) {
  const watch = { guestId, next: since, onOutput };
  consoleWatch = watch;
  connect();
  return () => {
    if (consoleWatch !== watch) return;
    consoleWatch = null;
    // Reopened without it unless another console is watched meanwhile (guest to guest); until
    // then its messages are dropped.
    setTimeout(() => { if (consoleWatch === null && source && source.url.includes("console=")) connect(); }, 1000);
  };
}

function disconnect() {
  generation += 1;
  clearTimeout(retryTimer);
  retryTimer = null;
  if (source) { source.close(); source = null; }
  if (pollAbort) { pollAbort.abort(); pollAbort = null; }
}

function streamURL() {
  const query = ["metrics=true"];
  if (lastSeq > 0) query.push(`since=${lastSeq}`);
  if (consoleWatch) query.push(`console=${encodeURIComponent(consoleWatch.guestId)}`, `consoleSince=${consoleWatch.next}`);
  return `/api/v1/events/stream?${query.join("&")}`;
}

function connect() {
  disconnect();
  if (!running || suspended) return;
  const mine = generation;
  if (polling || !("EventSource" in window)) { poll(mine); return; }
  // A fresh EventSource sends no Last-Event-ID, so it resumes with `since`; the server answers a
  // cursor from an earlier run with its whole ring, whose new epoch resets ours.
  const current = new EventSource(streamURL());
  source = current;
  let opened = false;
  current.onopen = () => {
    if (mine !== generation) return;
    opened = true;
    failures = 0;
    if (!connectedAt) connectedAt = Date.now();
    hooks.setStatus("live");
  };
  // Every message is a plain "message" whose JSON carries its type, so one handler sees all.
  current.onmessage = (message) => { if (mine === generation) dispatch(JSON.parse(message.data)); };
  current.onerror = () => {
    if (mine !== generation) return;
    // The browser would reconnect with the URL it has, whose console offset is stale: reopen
    // ourselves with fresh cursors instead, after a pause that grows with each failure.
    current.close();
    if (source === current) source = null;
    failures += 1;
    hooks.setStatus("reconnecting…");
    if (!opened && failures > 3) { checkSession(mine); return; }
    retryTimer = setTimeout(() => { if (mine === generation) connect(); }, Math.min(10000, 500 * 2 ** Math.min(failures, 5)));
  };
}

// The stream keeps failing before it opens: signed out (a 401 EventSource cannot show), or a
// proxy that does not pass event streams, in which case long polls take over.
async function checkSession(mine) {
  try {
    const response = await fetch("/api/v1/session", { credentials: "same-origin" });
    if (mine !== generation) return;
    if (response.status === 401) { signedOut(); return; }
    polling = response.ok;
  } catch { /* offline: try the stream again */ }
  if (mine !== generation) return;
  retryTimer = setTimeout(() => { if (mine === generation) connect(); }, 3000);
}

function signedOut() {
  hooks.setStatus("signed out");
  running = false;
  disconnect();
  hooks.onSignedOut();
}

async function poll(mine) {
  const abort = new AbortController();
  pollAbort = abort;
  if (consoleWatch) pollConsole(mine, abort.signal);
  while (mine === generation) {
    try {
      const response = await fetch(`/api/v1/events?since=${lastSeq}&wait=25`, { credentials: "same-origin", signal: abort.signal });
      if (mine !== generation) return;
      if (response.status === 401) { signedOut(); return; }
      if (!response.ok) throw new Error(String(response.status));
      const page = await response.json();
      if (!connectedAt) connectedAt = Date.now();
      hooks.setStatus("live (polling)");
      checkRun(page.epoch, page.truncated);
      for (const event of page.items) dispatch(event);
    } catch {
      if (mine !== generation) return;
      hooks.setStatus("offline, retrying…");
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }
}

// Without the stream, the console has its own long poll (a second connection, only here).
async function pollConsole(mine, signal) {
  const watch = consoleWatch;
  while (mine === generation && consoleWatch === watch) {
    try {
      const response = await fetch(`/api/v1/guests/${encodeURIComponent(watch.guestId)}/console?since=${watch.next}&wait=20`,
        { credentials: "same-origin", signal });
      if (!response.ok) throw new Error(String(response.status));
      const chunk = await response.json();
      if (mine !== generation || consoleWatch !== watch) return;
      dispatch({ seq: 0, type: "console.output", subject: watch.guestId, data: chunk });
    } catch {
      if (mine !== generation) return;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

// Back/forward cache and frozen tabs: hold no connection while not shown.
function suspend() {
  suspended = true;
  disconnect();
}

function wake() {
  if (!suspended) return;
  suspended = false;
  failures = 0;
  connect();
}

window.addEventListener("pagehide", suspend);
window.addEventListener("pageshow", (event) => { if (event.persisted) wake(); });
document.addEventListener("freeze", suspend);
document.addEventListener("resume", wake);
