// hookstep dashboard: small progressive enhancements. Every page works
// without this script.
(function () {
  "use strict";

  // Show each <time datetime> in the viewer's time zone.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) {
        t.title = t.getAttribute("datetime");
        t.textContent = d.toLocaleString();
      }
    });
  }

  // "Use Play" fills the URL field in place instead of posting the form.
  function usePlay() {
    var button = document.getElementById("use-play");
    var url = document.getElementById("url");
    if (!button || !url) return;
    button.addEventListener("click", function (ev) {
      ev.preventDefault();
      url.value = button.getAttribute("data-play-url");
      url.focus();
    });
  }

  // The recover form sends the viewer's UTC offset, so that a custom
  // "since" typed in local time is read as such.
  function tzOffset() {
    document.querySelectorAll("[data-tz-offset]").forEach(function (input) {
      input.value = String(new Date().getTimezoneOffset());
    });
    var since = document.getElementById("since");
    var custom = document.getElementById("window-custom");
    if (since && custom) {
      since.addEventListener("input", function () { custom.checked = true; });
    }
  }

  // The Play page polls its list of requests; it changes only when a
  // request arrives.
  function poll() {
    var box = document.querySelector("[data-poll]");
    if (!box) return;
    var url = box.getAttribute("data-poll");
    var last = null;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (res) {
          if (!res.ok || res.redirected) throw new Error("stopped");
          return res.text();
        })
        .then(function (html) {
          if (html !== last) {
            box.innerHTML = html;
            localTimes(box);
          }
          last = html;
          setTimeout(tick, 1500);
        })
        .catch(function () { /* signed out or offline: stop polling */ });
    }
    tick();
  }

  // Escape closes an open menu and puts the focus back on its button.
  function menus() {
    document.addEventListener("keydown", function (ev) {
      if (ev.key !== "Escape") return;
      document.querySelectorAll("details.menu[open]").forEach(function (d) {
        d.open = false;
        d.querySelector("summary").focus();
      });
    });
  }

  // A notice (?done=...) is shown once: a reload does not repeat it.
  function forgetNotice() {
    var url = new URL(window.location.href);
    if (url.searchParams.has("done")) {
      url.searchParams.delete("done");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    menus();
    forgetNotice();
    usePlay();
    tzOffset();
    poll();
  });
})();
