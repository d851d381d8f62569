/* Light/dark theme: "light", "dark" or unset (follow the system). Loaded in <head>. */
(function () {
  "use strict";
  var KEY = "parley-theme";
  var root = document.documentElement;
  function apply(value) {
    if (value === "light" || value === "dark") root.setAttribute("data-theme", value);
    else root.removeAttribute("data-theme");
  }
  try { apply(localStorage.getItem(KEY)); } catch (e) { /* storage blocked: follow the system */ }
  function current() {
    var set = root.getAttribute("data-theme");
    if (set) return set;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-theme-toggle]");
    if (!button) return;
    var next = current() === "dark" ? "light" : "dark";
    apply(next);
    try { localStorage.setItem(KEY, next); } catch (e) { /* not persisted */ }
    button.setAttribute("aria-pressed", next === "dark" ? "true" : "false");
  });
})();
