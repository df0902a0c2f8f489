/* Drills: exercise clocks that tick between page loads ([data-drill-clock]), and the participants' screen
   ([data-drill-screen]) that follows its session: it polls the screen's JSON and reloads when an event happened
   (an inject released, a decision opened, the clock paused). No inline script: the CSP allows only this file. */
(function () {
  "use strict";
  var POLL_MS = 3000;
  var clocks = Array.prototype.slice.call(document.querySelectorAll("[data-drill-clock]"));
  var loaded = Date.now();

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  /* The same text as soc.web.pages.drills.clock_text: '+02:30:15', '+1d 04:00:00'. */
  function clockText(seconds) {
    var total = Math.max(0, Math.floor(seconds));
    var days = Math.floor(total / 86400), rest = total % 86400;
    var text = pad(Math.floor(rest / 3600)) + ":" + pad(Math.floor((rest % 3600) / 60)) + ":" + pad(rest % 60);
    return "+" + (days ? days + "d " : "") + text;
  }

  function tick() {
    var elapsed = (Date.now() - loaded) / 1000;
    clocks.forEach(function (clock) {
      var base = parseFloat(clock.getAttribute("data-seconds")) || 0;
      var end = parseFloat(clock.getAttribute("data-duration")) || base;
      var now = clock.getAttribute("data-running") === "true" ? Math.min(base + elapsed, end) : base;
      clock.textContent = clockText(now);
    });
  }

  function follow(screen) {
    var url = screen.getAttribute("data-state-url");
    var version = screen.getAttribute("data-version");
    function poll() {
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          return response.ok ? response.json() : null;
        })
        .then(function (state) {
          if (!state) { return; }
          if (String(state.version) !== version) { window.location.reload(); return; }
          clocks.forEach(function (clock) {
            clock.setAttribute("data-seconds", String(state.clock_seconds));
            clock.setAttribute("data-running", state.running ? "true" : "false");
          });
          loaded = Date.now();
          tick();
        })
        .catch(function () { /* the next poll tries again */ });
    }
    window.setInterval(poll, POLL_MS);
  }

  if (clocks.length) { window.setInterval(tick, 1000); }
  var screen = document.querySelector("[data-drill-screen]");
  if (screen) { follow(screen); }
}());
