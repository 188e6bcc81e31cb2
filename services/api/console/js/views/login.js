// Sign-in through the API's development issuer (POST /auth/dev/token); the token lives in
// sessionStorage for this tab only and goes out as `Authorization: Bearer` on every call.

import { ApiError, call, session } from "../api.js";
import { el, setStatus, statusLine } from "../dom.js";

export function render(root, ctx, { message, onSignedIn }) {
  const status = statusLine("login-status");
  if (message) setStatus(status, message);
  const open = ctx.identity === "open";
  const form = el("form", { id: "login-form", novalidate: false },
    open
      ? el("p", { class: "muted", text: "This API has no sign-in configured (development build). Give the name " +
          "recorded on your alert actions." })
      : null,
    el("label", { for: "login-username" }, open ? "Name" : "Username",
      el("input", { id: "login-username", name: "username", required: true, autocomplete: "username", maxlength: 128 })),
    open ? null : el("label", { for: "login-password" }, "Password",
      el("input", { id: "login-password", name: "password", type: "password", required: true, autocomplete: "current-password" })),
    open ? null : el("label", { for: "login-otp" }, "One-time code",
      el("input", { id: "login-otp", name: "otp", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 12 })),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "login-submit", text: "Sign in" })),
    status);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = form.username.value.trim();
    if (!username) { setStatus(status, "Enter your username.", "error"); return; }
    if (open) {
      sessionStorage.setItem("platewatch.openUser", username);
      onSignedIn({ subject: username, agency_id: "", roles: [], kind: "human" });
      return;
    }
    setStatus(status, "Signing in…");
    try {
      const token = await call("/auth/dev/token", {
        method: "POST",
        json: { username, password: form.password.value, otp: form.otp.value.trim() },
        noAuthRedirect: true,
      });
      session.token = token.access_token;
      const me = await call("/auth/me", { noAuthRedirect: true });
      onSignedIn(me);
    } catch (err) {
      session.token = null;
      const why = err instanceof ApiError && (err.status === 401 || err.status === 403)
        ? `Sign-in refused: ${err.detail}` : `Sign-in failed: ${err.message}`;
      setStatus(status, why, "error");
      form.password.select();
    }
  });

  root.replaceChildren(el("section", { class: "login panel", "aria-labelledby": "login-title" },
    el("h1", { id: "login-title", text: "Sign in to platewatch" }), form));
  form.username.focus();
}
