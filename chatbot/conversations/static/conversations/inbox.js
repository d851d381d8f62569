/* The inbox's live behaviours over /ws/dashboard/ (chatbot/conversations/consumers.py).
 * - [data-inbox-live]: refetch the server-rendered list when a conversation changes.
 * - [data-conversation]: refetch the transcript on new messages and status changes; stream
 *   the bot's deltas into its bubble as plain text; show the visitor typing; send ours.
 * - select[data-canned-target]: insert a canned response into the reply box.
 * - #waiting-count and #inbox-notice: the number waiting, and a notice when one arrives (on
 *   every dashboard page: the shell loads this script too).
 * Message text is only ever rendered by the server (sanitized); deltas go in as textContent.
 */
(function () {
  "use strict";
  var list = document.querySelector("[data-inbox-live]");
  var page = document.querySelector("[data-conversation]");
  var notice = document.getElementById("inbox-notice");
  var socket = null;
  var retry = 500;
  var lastTyping = 0;
  var timers = new Map(); // one pending call per function: bursts of events fetch once

  function debounce(fn) {
    if (timers.has(fn)) clearTimeout(timers.get(fn));
    timers.set(fn, setTimeout(function () { timers.delete(fn); fn(); }, 150));
  }

  function swap(url, target) {
    if (!target) return Promise.resolve();
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var doc = new DOMParser().parseFromString("<div>" + html + "</div>", "text/html");
        var fresh = doc.body.firstChild;
        var transcript = target.querySelector("#transcript");
        var stick = transcript && transcript.scrollTop + transcript.clientHeight >= transcript.scrollHeight - 20;
        target.replaceChildren.apply(target, Array.prototype.slice.call(fresh.childNodes));
        transcript = target.querySelector("#transcript");
        if (transcript && stick) transcript.scrollTop = transcript.scrollHeight;
        syncControls();
      });
  }

  function refreshList() { if (list) swap(list.getAttribute("data-list-url"), list); }
  function refreshConversation() {
    if (page) swap(page.getAttribute("data-live-url"), document.getElementById("live"));
  }

  // The action buttons depend on the status; reload the page's controls when it changed.
  function syncControls() {
    var line = document.getElementById("status-line");
    if (!line || !page) return;
    var status = line.getAttribute("data-status");
    var previous = page.getAttribute("data-status");
    page.setAttribute("data-status", status);
    if (previous && previous !== status && !document.querySelector("textarea:focus")) {
      window.location.reload();
    }
  }

  function setWaiting(delta) {
    var badge = document.getElementById("waiting-count");
    if (!badge) return;
    var n = Math.max(0, parseInt(badge.getAttribute("data-waiting") || "0", 10) + delta);
    badge.setAttribute("data-waiting", String(n));
    badge.textContent = n + " waiting for a person";
    badge.classList.toggle("hot", n > 0);
  }

  function announce(text) {
    if (!notice) {
      // Any other dashboard page: a polite notice above the content, linking to the inbox.
      var main = document.getElementById("main");
      if (!main) return;
      notice = document.createElement("a");
      notice.id = "inbox-notice";
      notice.className = "inbox-notice";
      notice.href = "/conversations/?status=waiting";
      notice.setAttribute("role", "status");
      main.parentNode.insertBefore(notice, main);
    }
    notice.textContent = text;
    notice.classList.add("shown");
    setTimeout(function () {
      notice.classList.remove("shown");
      notice.textContent = "";
    }, 8000);
  }

  function onDelta(frame) {
    var row = document.getElementById("msg-" + frame.seq);
    if (!row) { debounce(refreshConversation); return; }
    var text = row.querySelector(".text");
    if (!text) return;
    if (!row.hasAttribute("data-streamed")) {
      row.setAttribute("data-streamed", "");
      text.textContent = "";
      text.classList.add("streaming-text");
    }
    var have = text.textContent.length;
    var end = frame.offset + frame.text.length;
    if (end > have) text.textContent += frame.text.slice(Math.max(0, have - frame.offset));
  }

  var typingTimer = null;
  function onTyping(frame) {
    var line = document.getElementById("visitor-typing");
    if (!line) return;
    line.textContent = frame.who === "visitor" ? "The visitor is typing…" : (frame.name || "A teammate") + " is typing…";
    if (typingTimer) clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { line.textContent = ""; }, 4000);
  }

  function handle(frame) {
    switch (frame.type) {
      case "inbox.conversation":
        debounce(refreshList);
        return;
      case "inbox.waiting":
        setWaiting(1);
        announce("A visitor is waiting for a person.");
        debounce(refreshList);
        return;
      case "message":
      case "conversation":
      case "action": // a bot's action ran or changed state (shown under its reply)
        if (frame.type === "message" && frame.message && frame.message.status === "streaming") {
          var row = document.getElementById("msg-" + frame.message.seq);
          if (row) return;
        }
        debounce(refreshConversation);
        return;
      case "delta": return onDelta(frame);
      case "typing": return onTyping(frame);
      default: return;
    }
  }

  function connect() {
    // Inbox pages, and every other dashboard page for the "someone is waiting" notice.
    if (!list && !page && !document.body.classList.contains("dashboard")) return;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/dashboard/");
    socket.addEventListener("open", function () {
      retry = 500;
      socket.send(JSON.stringify({ type: "subscribe.inbox" }));
      if (page) {
        socket.send(JSON.stringify({ type: "subscribe.conversation", conversation: page.getAttribute("data-conversation") }));
        // Anything that happened while we were away.
        refreshConversation();
      } else {
        refreshList();
      }
      document.documentElement.setAttribute("data-inbox-connected", "");
    });
    socket.addEventListener("message", function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      handle(frame);
    });
    socket.addEventListener("close", function () {
      document.documentElement.removeAttribute("data-inbox-connected");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    });
  }

  document.addEventListener("input", function (event) {
    if (!event.target.hasAttribute || !event.target.hasAttribute("data-typing")) return;
    var now = Date.now();
    if (socket && socket.readyState === 1 && now - lastTyping > 2000) {
      lastTyping = now;
      socket.send(JSON.stringify({ type: "typing" }));
    }
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.hasAttribute || !select.hasAttribute("data-canned-target")) return;
    var box = document.getElementById(select.getAttribute("data-canned-target"));
    if (box && select.value) {
      box.value = box.value ? box.value + "\n" + select.value : select.value;
      box.focus();
    }
    select.value = "";
  });

  if (page) {
    var line = document.getElementById("status-line");
    if (line) page.setAttribute("data-status", line.getAttribute("data-status"));
  }
  connect();
})();
