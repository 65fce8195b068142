// The REST API from the browser: session login, CSRF on changes, errors as messages.

const state = { csrf: sessionStorage.getItem("emupanel.csrf") };

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(`/api/v1${path}`, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  let payload = null;
  try { payload = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) {
    const error = payload && payload.error ? payload.error : { code: "http_" + response.status, message: response.statusText };
    throw new ApiError(response.status, error.code, error.message);
  }
  return payload;
}

export async function login(token) {
  const session = await api("POST", "/session", { token });
  state.csrf = session.csrfToken;
  sessionStorage.setItem("emupanel.csrf", state.csrf);
  return session;
}

/** True when the session cookie is still good; refreshes the CSRF token after a reload. */
export async function resumeSession() {
  try {
    const session = await api("GET", "/session");
    if (session.csrfToken) {
      state.csrf = session.csrfToken;
      sessionStorage.setItem("emupanel.csrf", state.csrf);
    }
    return true;
  } catch (error) {
    if (error.status === 401) return false;
    throw error;
  }
}

export async function logout() {
  try { await api("DELETE", "/session"); } finally {
    state.csrf = null;
    sessionStorage.removeItem("emupanel.csrf");
  }
}
