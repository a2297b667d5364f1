// Loaded only in an embedded Admin Portal: tells the framing page what happens, with
// postMessage to the one origin the server rendered (data-embed-origin), never "*".
// Each event is an element [data-roster-event] the server renders; each is posted once per
// directory (and error), also when htmx swaps it in later.
(function () {
  "use strict";
  var origin = document.body && document.body.getAttribute("data-embed-origin");
  if (!origin || window.parent === window) return;

  var sent = {};
  function remembered(key) {
    try { return sent[key] || window.sessionStorage.getItem("roster-embed:" + key) === "1"; }
    catch (e) { return !!sent[key]; }
  }
  function remember(key) {
    sent[key] = true;
    try { window.sessionStorage.setItem("roster-embed:" + key, "1"); } catch (e) { /* partitioned storage */ }
  }

  function post(el) {
    var name = el.getAttribute("data-roster-event");
    var message = { type: "roster:" + name };
    var directory = el.getAttribute("data-directory");
    if (directory) message.directory_id = directory;
    var provider = el.getAttribute("data-provider");
    if (provider) message.provider = provider;
    var detail = el.getAttribute("data-detail");
    if (detail) message.detail = detail;
    var key = name + ":" + (directory || "") + ":" + (el.getAttribute("data-key") || "");
    if (remembered(key)) return;
    remember(key);
    window.parent.postMessage(message, origin);
  }

  function scan() {
    var els = document.querySelectorAll("[data-roster-event]");
    for (var i = 0; i < els.length; i++) post(els[i]);
  }

  scan();
  new MutationObserver(scan).observe(document.body, { childList: true, subtree: true });
})();
