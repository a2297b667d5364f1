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
})();
