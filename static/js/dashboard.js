/* The dashboard's few behaviours; every page works without them.
 * - [data-nav-toggle]: opens/closes the sidebar on narrow screens (Escape closes it).
 * - form[data-autosubmit]: submits when its select changes (the workspace switcher).
 * - form[data-confirm]: asks before submitting (revoke, remove).
 * - [data-copy]: copies the text of the element it names (a new API key).
 * - form[data-inplace]: submits in the background and swaps the page's <main> with the
 *   <main> of the answer, so lists update in place without a full reload.
 */
(function () {
  "use strict";
  var toggle = document.querySelector("[data-nav-toggle]");
  var sidebar = document.getElementById("sidebar");
  function setOpen(open) {
    if (!toggle || !sidebar) return;
    sidebar.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }
  if (toggle) {
    toggle.addEventListener("click", function () {
      setOpen(toggle.getAttribute("aria-expanded") !== "true");
    });
  }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && sidebar && sidebar.classList.contains("open")) {
      setOpen(false);
      toggle.focus();
    }
  });

  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    var fallback = form.querySelector("[data-autosubmit-fallback]");
    if (fallback) fallback.hidden = true;
    form.addEventListener("change", function () { form.submit(); });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (!form.hasAttribute("data-inplace") || !window.fetch) return;
    event.preventDefault();
    var main = document.getElementById("main");
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      return response.text().then(function (html) { return { response: response, html: html }; });
    }).then(function (result) {
      var doc = new DOMParser().parseFromString(result.html, "text/html");
      var next = doc.getElementById("main");
      if (!next || !main) { window.location.reload(); return; }
      main.innerHTML = next.innerHTML;
      if (result.response.redirected) history.replaceState(null, "", result.response.url);
      var flashes = doc.querySelector(".flashes");
      var current = document.querySelector(".flashes");
      if (current) current.remove();
      if (flashes) main.parentNode.insertBefore(flashes, main);
      main.focus();
    }).catch(function () { form.submit(); });
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });
})();
