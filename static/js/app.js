// Roster's only hand-written script: what htmx cannot do. Loaded with `defer`; works under a
// strict CSP (no inline handlers) and on content htmx swaps in (event delegation).
(function () {
  "use strict";

  // Select text in a hidden textarea and use execCommand: works on plain http too.
  function legacyCopy(text) {
    var active = document.activeElement;
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed"; // CSSOM, not a style attribute: allowed by the CSP
    area.style.top = "0";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    area.setSelectionRange(0, text.length);
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    if (active && active.focus) active.focus();
    return ok;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        if (!legacyCopy(text)) throw new Error("copy refused");
      });
    }
    // Plain http on a non-loopback host: the Clipboard API is unavailable.
    return legacyCopy(text) ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  // Leave the text selected so the user can press Ctrl+C / Cmd+C themselves.
  function selectSource(source) {
    if (typeof source.select === "function") { source.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(source);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.dataset.copyTarget);
    if (!source) return;
    var isField = source instanceof HTMLInputElement || source instanceof HTMLTextAreaElement;
    var text = (isField ? source.value : source.textContent).trim();
    if (button.dataset.label === undefined) button.dataset.label = button.textContent;
    copyText(text).then(
      function () { button.textContent = "Copied"; },
      function () { selectSource(source); button.textContent = "Press Ctrl+C"; }
    ).then(function () {
      clearTimeout(button._rosterTimer);
      button._rosterTimer = setTimeout(function () {
        button.textContent = button.dataset.label;
      }, 1500);
    });
  });

  // Live lists that hold expandable rows (the request inspector) pause polling while a row is
  // open, so what the admin is reading is not swapped away. No eval: works under the CSP.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var el = event.detail && event.detail.elt;
    if (el && el.hasAttribute("data-pause-when-open") && el.querySelector("details[open]")) {
      event.preventDefault();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // ---- Live views -------------------------------------------------------------------------
  // Every element that refreshes itself (hx-trigger="every …") shows when it last got fresh
  // data ("Live · updated 3 s ago"). When a refresh fails (session ended, SCIM turned off,
  // directory deleted, any 4xx/5xx), the failure is shown as a banner in place and the
  // refreshing stops: never is a whole page swapped into a fragment.
  var lastFresh = {};

  function isLive(el) {
    return !!(el && el.id && /\bevery\b/.test(el.getAttribute("hx-trigger") || ""));
  }

  function statusFor(el) {
    var status = document.querySelector('.live-status[data-live-for="' + el.id + '"]');
    if (!status) {
      status = document.createElement("p");
      status.className = "live-status";
      status.setAttribute("data-live-for", el.id);
      el.parentNode.insertBefore(status, el);
    }
    return status;
  }

  function markFresh(el) {
    if (!isLive(el)) return;
    lastFresh[el.id] = Date.now();
    var status = statusFor(el);
    status.classList.remove("stopped", "retrying");
    tick();
  }

  function tick() {
    var nodes = document.querySelectorAll(".live-status[data-live-for]");
    for (var i = 0; i < nodes.length; i++) {
      var s = nodes[i];
      if (s.classList.contains("stopped")) continue;
      var at = lastFresh[s.getAttribute("data-live-for")];
      if (at === undefined) continue;
      var secs = Math.max(0, Math.floor((Date.now() - at) / 1000));
      var text = (s.classList.contains("retrying") ? "Cannot reach the server, retrying · " : "Live · ") +
        "updated " + secs + " s ago";
      if (s.textContent !== text) s.textContent = text;
    }
  }
  setInterval(tick, 1000);

  function scanLive(root) {
    var nodes = (root || document).querySelectorAll('[hx-trigger*="every"][id]');
    for (var i = 0; i < nodes.length; i++) markFresh(nodes[i]);
    if (root && root.nodeType === 1 && root.matches('[hx-trigger*="every"][id]')) markFresh(root);
  }
  document.addEventListener("DOMContentLoaded", function () { scanLive(document); });

  function looksLikePage(text) {
    return /<html[\s>]|<!doctype/i.test(text || "");
  }

  // The banner the server sent (a fragment marked data-live-error), or one made here.
  function bannerFrom(xhr) {
    var text = xhr ? xhr.responseText : "";
    if (text && !looksLikePage(text) && text.indexOf("data-live-error") !== -1) {
      var holder = document.createElement("div");
      holder.innerHTML = text; // htmx's allowScriptTags is off; the server escapes its text
      var found = holder.querySelector("[data-live-error]");
      if (found) return found;
    }
    var banner = document.createElement("div");
    banner.className = "live-error";
    banner.setAttribute("role", "alert");
    banner.setAttribute("data-live-error", "");
    var strong = document.createElement("strong");
    var status = xhr ? xhr.status : 0;
    if (status === 401) {
      strong.textContent = "Your session ended.";
      banner.appendChild(strong);
      banner.appendChild(document.createTextNode(" Live updates stopped. Open the link you were sent again to sign in."));
    } else {
      strong.textContent = "Live updates stopped.";
      banner.appendChild(strong);
      banner.appendChild(document.createTextNode(status
        ? " The server answered " + status + ". Reload the page to try again."
        : " The server sent a page where a part of this one was expected. Reload the page."));
    }
    return banner;
  }

  function stop(el, banner) {
    if (!el || !el.parentNode) return;
    var old = el.id ? document.querySelector('[data-live-error][data-live-for="' + el.id + '"]') : null;
    if (el.id) banner.setAttribute("data-live-for", el.id);
    if (old) old.parentNode.replaceChild(banner, old);
    else el.parentNode.insertBefore(banner, el);
    el.classList.add("is-stale");
    el.setAttribute("data-live-stopped", "");
    if (isLive(el)) {
      var status = statusFor(el);
      status.classList.add("stopped");
      status.classList.remove("retrying");
      var at = lastFresh[el.id];
      status.textContent = "Live updates stopped" + (at ? " · last updated " + new Date(at).toLocaleTimeString() : "");
    }
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var d = event.detail;
    var xhr = d.xhr;
    var failed = xhr && (xhr.status >= 400 || looksLikePage(xhr.responseText));
    if (!failed) return;
    d.shouldSwap = false;
    d.isError = false; // handled here: no console noise from htmx
    stop(d.target || d.elt, bannerFrom(xhr));
  });

  // The server could not be reached: say so, keep trying (a poll resumes by itself).
  document.addEventListener("htmx:sendError", function (event) {
    var el = event.detail && (event.detail.target || event.detail.elt);
    if (isLive(el)) statusFor(el).classList.add("retrying");
    tick();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var el = event.detail && event.detail.target;
    // An outerHTML swap replaced the target: find the element by its id again.
    var fresh = el && el.id ? document.getElementById(el.id) : null;
    if (fresh) markFresh(fresh);
    else if (el) scanLive(el);
  });

  // A stopped view sends nothing more.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var el = event.detail && event.detail.elt;
    if (el && el.hasAttribute && el.hasAttribute("data-live-stopped")) event.preventDefault();
  });

  // ---- Times ------------------------------------------------------------------------------
  // The server writes times as "2026-11-28 14:02:11 UTC". They are shown relative ("5 min
  // ago") and in the viewer's time zone, with the exact UTC time on hover.
  var UTC_TIME = /(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) UTC/g;

  function relative(ms) {
    var s = Math.round((Date.now() - ms) / 1000);
    var future = s < 0;
    var a = Math.abs(s);
    var text;
    if (a < 10) return "just now";
    if (a < 60) text = a + " s";
    else if (a < 3600) text = Math.floor(a / 60) + " min";
    else if (a < 86400) text = Math.floor(a / 3600) + " h";
    else if (a < 86400 * 60) text = Math.floor(a / 86400) + " day" + (Math.floor(a / 86400) === 1 ? "" : "s");
    else return null;
    return future ? "in " + text : text + " ago";
  }

  function showTime(el) {
    var ms = Number(el.getAttribute("data-utc"));
    var local = new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    var rel = relative(ms);
    var text = rel ? rel + " (" + local + ")" : local;
    if (el.textContent !== text) el.textContent = text;
  }

  function localizeTimes(root) {
    if (!root || !root.querySelectorAll) return;
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
      acceptNode: function (n) {
        var p = n.parentNode;
        if (!p || p.closest("pre, code, time, textarea, script, style, [data-no-localize]")) return NodeFilter.FILTER_REJECT;
        UTC_TIME.lastIndex = 0;
        return UTC_TIME.test(n.nodeValue) ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_SKIP;
      }
    });
    var nodes = [];
    while (walker.nextNode()) nodes.push(walker.currentNode);
    nodes.forEach(function (node) {
      var text = node.nodeValue;
      var frag = document.createDocumentFragment();
      var last = 0;
      UTC_TIME.lastIndex = 0;
      var m;
      while ((m = UTC_TIME.exec(text))) {
        frag.appendChild(document.createTextNode(text.slice(last, m.index)));
        var ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
        var t = document.createElement("time");
        t.setAttribute("datetime", new Date(ms).toISOString());
        t.setAttribute("data-utc", String(ms));
        t.setAttribute("title", m[0]);
        showTime(t);
        frag.appendChild(t);
        last = m.index + m[0].length;
      }
      frag.appendChild(document.createTextNode(text.slice(last)));
      node.parentNode.replaceChild(frag, node);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { localizeTimes(document.body); });
  document.addEventListener("htmx:load", function (event) { localizeTimes(event.detail && event.detail.elt); });
  setInterval(function () {
    var nodes = document.querySelectorAll("time[data-utc]");
    for (var i = 0; i < nodes.length; i++) showTime(nodes[i]);
  }, 15000);
})();
