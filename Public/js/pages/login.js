import { login } from "../api.js";
import { h, fill } from "../dom.js";

export function renderLogin(main, onSuccess, presetToken = "") {
  const error = h("p", { class: "error", role: "alert", id: "login-error" });
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password",
    required: true, minlength: 8, "aria-describedby": "login-error", value: presetToken });
  const form = h("form", { class: "card login", novalidate: true },
    h("h1", {}, "Log in"),
    h("p", { class: "muted" }, "Paste the admin token that emupanel printed at start (or open the login URL it printed)."),
    h("label", { for: "token" }, "Admin token"), input, error,
    h("p", {}, h("button", { class: "primary", type: "submit" }, "Log in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const token = input.value.trim();
    if (token.length < 8) { error.textContent = "The token has at least 8 characters."; input.focus(); return; }
    try {
      await login(token);
      onSuccess();
    } catch (failure) {
      error.textContent = failure.status === 401 ? "That token is not valid." : failure.message;
      input.focus();
    }
  });
  fill(main, form);
  input.focus();
  if (presetToken) form.requestSubmit();
}
