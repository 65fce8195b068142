// Live updates: Server-Sent Events, falling back to long polling. Listeners get every event.
// Sequence numbers restart with every panel run; events and pages carry the run's `epoch`. A new
// epoch or a truncated page means events were missed: the cursor starts over and pages resync.

const listeners = new Set();
let epoch = null;
let lastSeq = 0;
let generation = 0; // bumped by every start, so a loop from an earlier login ends
let source = null;
let hooks = { setStatus: () => {}, onResync: () => {}, onSignedOut: () => {} };

export function onEvent(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

// The first epoch seen is adopted; a different one later means the panel restarted.
function checkRun(seen, truncated = false) {
  if (!seen) return;
  const known = epoch;
  epoch = seen;
  if (known === null || (known === seen && !truncated)) return;
  lastSeq = 0;
  hooks.onResync();
}

function dispatch(event) {
  checkRun(event.epoch);
  if (event.seq <= lastSeq) return;
  lastSeq = event.seq;
  for (const listener of listeners) {
    try { listener(event); } catch (error) { console.error(error); }
  }
}

/**
 * Starts (or, after a new login, restarts) live updates. `setStatus` shows the connection,
 * `onResync` reloads the page after missed events, `onSignedOut` runs when the session is gone.
 */
export function startEvents(newHooks) {
  hooks = { ...hooks, ...newHooks };
  const mine = ++generation;
  if (source) { source.close(); source = null; }
  if (!("EventSource" in window)) { poll(mine); return; }
  // A fresh EventSource sends no Last-Event-ID, so resume with `since`; the server answers a
  // cursor from an earlier run with its whole ring, whose new epoch resets ours.
  source = new EventSource("/api/v1/events/stream" + (lastSeq > 0 ? `?since=${lastSeq}` : ""));
  const current = source;
  let failures = 0;
  current.onopen = () => {
    // Reconnected before any event told us the epoch: a restart can't be ruled out.
    if (failures > 0 && epoch === null) hooks.onResync();
    failures = 0;
    hooks.setStatus("live");
  };
  // Every event arrives as a plain "message" whose JSON carries its type, so one handler sees all.
  current.onmessage = (message) => dispatch(JSON.parse(message.data));
  current.addEventListener("error", () => {
    if (mine !== generation) return;
    failures += 1;
    hooks.setStatus("reconnecting…");
    // CLOSED: the browser gave up for good (a 401 after a restart, any non-200); polling finds out why.
    if (current.readyState === EventSource.CLOSED || failures > 3) {
      current.close();
      if (source === current) source = null;
      poll(mine);
    }
  });
}

async function poll(mine) {
  while (mine === generation) {
    try {
      const response = await fetch(`/api/v1/events?since=${lastSeq}&wait=25`, { credentials: "same-origin" });
      if (mine !== generation) return;
      if (response.status === 401) { hooks.setStatus("signed out"); hooks.onSignedOut(); return; }
      if (!response.ok) throw new Error(String(response.status));
      const page = await response.json();
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
