// Log in and create an account.
import { h, fill, api, field } from "../lib.js";
import { navigate, setUser } from "../app.js";

export default function auth(main, [which], ctx) {
  const register = which === "register";
  document.title = `${register ? "Create account" : "Log in"} · livescope`;
  const next = ctx.query.get("next");
  // Only a page of this site: "//x" and "/\\x" name other hosts.
  const sameSite = (u) => { try { return new URL(u, location.origin).origin === location.origin; } catch { return false; } };
  const target = next && sameSite(next) ? next : "/";
  const user = h("input#username", { name: "username", autocomplete: "username", required: true, minLength: 3, maxLength: 30, pattern: "[A-Za-z0-9_]+", autocapitalize: "none", spellcheck: false });
  const pass = h("input#password", { name: "password", type: "password", autocomplete: register ? "new-password" : "current-password", required: true, minLength: register ? 8 : 1 });
  const error = h("p.error#auth-error", { role: "alert" });
  const submit = h("button.btn.primary.wide", { type: "submit" }, register ? "Create account" : "Log in");
  const form = h("form.card-form", { onsubmit: go },
    h("h1", {}, register ? "Create your account" : "Welcome back"),
    field("Username", user, register ? "3 to 30 letters, digits or underscores." : null),
    field("Password", pass, register ? "At least 8 characters." : null),
    error, submit,
    h("p.muted.center", {}, register ? "Already have an account? " : "New here? ",
      h("a", { href: (register ? "/login" : "/register") + (next ? `?next=${encodeURIComponent(next)}` : "") }, register ? "Log in" : "Create an account")));
  fill(main, h("section.page.narrow", {}, form));
  user.focus();

  async function go(e) {
    e.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    const body = { username: user.value.trim(), password: pass.value };
    try {
      if (register) await api("/api/users", { method: "POST", body });
      const s = await api("/api/sessions", { method: "POST", body });
      setUser(s.username);
      navigate(target, true);
    } catch (err) {
      error.textContent = err.message;
      submit.disabled = false;
    }
  }
}
