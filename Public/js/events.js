// Live updates: Server-Sent Events, falling back to long polling. Listeners get every event.

const listeners = new Set();
let lastSeq = 0;
let started = false;

export function onEvent(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function dispatch(event) {
  if (event.seq <= lastSeq) return;
  lastSeq = event.seq;
  for (const listener of listeners) {
    try { listener(event); } catch (error) { console.error(error); }
  }
}

export function startEvents(setStatus) {
  if (started) return;
  started = true;
  if (!("EventSource" in window)) { poll(setStatus); return; }
  const source = new EventSource("/api/v1/events/stream");
  let failures = 0;
  source.onopen = () => { failures = 0; setStatus("live"); };
  source.onmessage = (message) => dispatch(JSON.parse(message.data));
  // Every event arrives as a plain "message" whose JSON carries its type, so one handler sees all.
  source.addEventListener("error", () => {
    failures += 1;
    setStatus("reconnecting…");
    if (failures > 3) { source.close(); poll(setStatus); }
  });
}

async function poll(setStatus) {
  for (;;) {
    try {
      const response = await fetch(`/api/v1/events?since=${lastSeq}&wait=25`, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      const page = await response.json();
      setStatus("live (polling)");
      for (const event of page.items) dispatch(event);
    } catch {
      setStatus("offline, retrying…");
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }
}
