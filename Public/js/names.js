// Guest names by id, for lists and messages that only carry ids (tasks, notifications): learned
// from every guest list the pages load and from guest events.
import { onEvent } from "./events.js";

const names = new Map();

export function learnGuests(guests) {
  for (const guest of guests) names.set(guest.id, guest.name);
}

export function guestName(id) {
  return names.get(id) || null;
}

onEvent((event) => {
  if (event.type.startsWith("guest.") && event.data && event.data.id && event.data.name) names.set(event.data.id, event.data.name);
});
