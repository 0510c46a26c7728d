// The login page: the one-time code is in the link's fragment, which the
// browser never sends anywhere. Take it out of the address bar at once,
// trade it for a session cookie, and replace this page with the dashboard,
// so that no entry of the history holds it.
"use strict";
(async () => {
  const code = location.hash.slice(1);
  history.replaceState(null, "", "/login");
  const msg = document.getElementById("msg");
  try {
    const r = await fetch("/api/v0/session", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code }),
    });
    if (r.ok) {
      location.replace("/");
      return;
    }
    const e = await r.json().catch(() => ({}));
    msg.textContent = e.message || "This login link does not work: get a fresh one with 'nube open'.";
  } catch (e) {
    msg.textContent = "The node did not answer: is it running?";
  }
})();
