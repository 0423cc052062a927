// hookstep dashboard: small progressive enhancements. Every page works
// without this script, but for the portal's landing page, which reads
// the link's token from the fragment.
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

  // The portal link's landing page: the token is in the fragment
  // (#key=...), which browsers never send to a server, put in a Referer
  // or log. It leaves the address bar and the history at once, goes to
  // the server in a POST body, and the session cookie takes over.
  function portalLanding() {
    var box = document.getElementById("portal-landing");
    if (!box) return;
    var status = document.getElementById("portal-status");
    var m = /(?:^#|&)key=([^&]*)/.exec(window.location.hash);
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
    if (!m) {
      // A reload of the landing page: the session, if any, goes on.
      window.location.replace(box.getAttribute("data-home"));
      return;
    }
    var token;
    try {
      token = decodeURIComponent(m[1]);
    } catch (e) {
      token = m[1];
    }
    fetch(box.getAttribute("data-session"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ token: token })
    })
      .then(function (res) { return res.json(); })
      .then(function (body) {
        if (!body || typeof body.location !== "string" || body.location.charAt(0) !== "/") throw new Error("no location");
        window.location.replace(body.location);
      })
      .catch(function () {
        status.textContent = "This page could not be opened. Reload it, or open it again from your dashboard.";
      });
  }

  // In a frame, the portal tells the page around it how tall it is, as
  // Svix's App Portal does: svix-react's <AppPortal fullSize> sets the
  // iframe's height from these messages. They carry nothing but a height,
  // so any parent may read them.
  function resizer() {
    if (window.parent === window) return;
    var last = -1;
    function post() {
      var body = document.body;
      var height = Math.ceil(Math.max(body.scrollHeight, body.getBoundingClientRect().height));
      if (height === last) return;
      last = height;
      window.parent.postMessage({ type: "svix.iframe-resizer-height", payload: { height: height } }, "*");
    }
    post();
    window.addEventListener("load", post);
    if (window.ResizeObserver) {
      new ResizeObserver(post).observe(document.body);
    }
    // An opened menu or log row changes the height too.
    document.addEventListener("toggle", post, true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    portalLanding();
    resizer();
    localTimes(document);
    menus();
    forgetNotice();
    usePlay();
    tzOffset();
    poll();
  });
})();
