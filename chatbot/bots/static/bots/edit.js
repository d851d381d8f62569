/* Bot edit page: the live preview and the copy buttons.
 * The preview is the real frame page in preview mode (same origin as the dashboard). This page
 * plays the loader's part of the handshake (docs/widget-protocol.md, section 7): it answers the
 * frame's "ready" with "init", then posts a "preview" config built from the form as the owner
 * types. Messages go to the exact platform origin and only our iframe's messages are read. */
(function () {
  "use strict";
  var frame = document.getElementById("bot-preview");
  var form = document.getElementById("bot-form");
  var base = document.getElementById("bot-preview-config");
  if (frame && form && base) {
    var origin = frame.getAttribute("data-origin");
    var ready = false;
    var config = JSON.parse(base.textContent || "{}");
    var value = function (name) {
      var field = form.elements.namedItem(name);
      return field ? field.value : "";
    };
    var lines = function (text) {
      return text.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
    };
    var draft = function () {
      var appearance = Object.assign({}, config.appearance || {}, {
        accent: value("accent_color"),
        position: value("position"),
        theme: value("theme"),
        launcher: value("launcher_icon"),
        avatar_url: value("avatar_url")
      });
      return Object.assign({}, config, {
        name: value("name"),
        title: value("title") || value("name"),
        greeting: value("greeting"),
        suggested_questions: lines(value("suggested_questions_text")).slice(0, 6),
        locale: value("default_locale"),
        appearance: appearance
      });
    };
    var post = function (message) {
      message.parley = 1;
      if (ready && frame.contentWindow) frame.contentWindow.postMessage(message, origin);
    };
    window.addEventListener("message", function (event) {
      if (event.origin !== origin || event.source !== frame.contentWindow) return;
      var data = event.data;
      if (!data || data.parley !== 1) return;
      if (data.type === "ready") {
        ready = true;
        post({ type: "init", locale: value("default_locale"), open: true });
        post({ type: "preview", bot: draft() });
      }
    });
    var timer = null;
    var update = function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        post({ type: "preview", bot: draft() });
        if (value("default_locale")) post({ type: "locale", code: value("default_locale") });
      }, 150);
    };
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    // Load the frame only now that we listen: its "ready" must not arrive before we do.
    frame.src = frame.getAttribute("data-src");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-snippet]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-snippet"));
    var status = document.getElementById("copy-status");
    if (!source) return;
    var text = (source.value !== undefined ? source.value : source.textContent).trim();
    var done = function (ok) {
      if (status) status.textContent = ok ? "Copied." : "Select the text and copy it (Ctrl+C).";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
    } else {
      if (source.select) source.select();
      try { done(document.execCommand("copy")); } catch (error) { done(false); }
    }
  });

})();
