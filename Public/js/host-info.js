// What the host says about itself (GET /host), and the limits the UI checks input against:
// `limits` is the one source (the server enforces the same); while a panel does not send it yet,
// the UI checks only what it knows for sure and leaves the rest to the server's answer.
import { api } from "./api.js";

export async function hostInfo() {
  return api("GET", "/host");
}

/** {min, max} MiB of guest memory on `backend`; max is null when the host does not say. */
export function memoryLimits(host, image, backend = "builtin") {
  const limits = host && host.limits ? host.limits : {};
  const range = (limits.backendMemoryMiB && limits.backendMemoryMiB[backend]) || limits.memoryMiB || {};
  const imageMin = image && image.minimumMemoryMiB ? image.minimumMemoryMiB : 1;
  const min = Math.max(imageMin, Number.isInteger(range.min) ? range.min : 16);
  const max = Number.isInteger(range.max) ? range.max : null;
  return { min, max };
}
