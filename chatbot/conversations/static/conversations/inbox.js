/* The inbox's live behaviours over /ws/dashboard/ (chatbot/conversations/consumers.py).
 * - [data-inbox-live]: refetch the server-rendered list when a conversation changes.
 * - [data-conversation]: refetch the transcript on new messages and status changes; stream
 *   the bot's deltas into its bubble as plain text; show the visitor typing; send ours.
 * - select[data-canned-target]: insert a canned response into the reply box.
 * - #waiting-count and #inbox-notice: the number waiting, and a notice when one arrives (on
 *   every dashboard page: the shell loads this script too).
 * - Agent alerts: the Inbox entry's waiting count, and per the member's profile settings
 *   (body data-notify-*), a browser notification and a short sound when a visitor starts
 *   waiting or writes in a conversation assigned to them.
 * Message text is only ever rendered by the server (sanitized); deltas go in as textContent.
 * Words come from #dashboard-strings (translated by the server).
 */
(function () {
  "use strict";
  var list = document.querySelector("[data-inbox-live]");
  var page = document.querySelector("[data-conversation]");
  var notice = document.getElementById("inbox-notice");
  var socket = null;
  var retry = 500;
  var awaiting = 0; // "subscribed" answers still to come on this socket
  var lastTyping = 0;
  var timers = new Map(); // one pending call per function: bursts of events fetch once
  var body = document.body;
  var strings = {};
  try { strings = JSON.parse(document.getElementById("dashboard-strings").textContent); } catch (e) { /* English */ }
  function say(key, fallback, n) {
    return (strings[key] || fallback).replace("%(num)d", String(n));
  }

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
    badge.textContent = say(n === 1 ? "waitingOne" : "waitingMany", "%(num)d waiting for a person", n);
    badge.classList.toggle("hot", n > 0);
  }

  // The Inbox entry's count: fetched again after events that may change it.
  function navCount() { return document.querySelector("[data-nav-waiting]"); }
  function refreshNavCount() {
    var count = navCount();
    var url = body.getAttribute("data-waiting-url");
    if (!count || !url) return;
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        count.setAttribute("data-nav-waiting", String(data.waiting));
        count.querySelector("[data-n]").textContent = String(data.waiting);
        count.hidden = !data.waiting;
      });
  }

  // A browser notification and/or a short tone, as the member chose on their profile.
  function alertAgent(title, url) {
    if (body.getAttribute("data-notify-sound") === "on") tone();
    if (body.getAttribute("data-notify-browser") !== "on" || !("Notification" in window)) return;
    if (Notification.permission !== "granted") return;
    var note = new Notification(title, { tag: url, body: document.title });
    note.addEventListener("click", function () { window.focus(); location.href = url; });
  }
  var audio = null;
  function tone() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    audio = audio || new Context();
    var now = audio.currentTime;
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.4);
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start(now);
    osc.stop(now + 0.45);
  }
  function conversationUrl(id) { return (body.getAttribute("data-inbox-url") || "/conversations/") + encodeURIComponent(id) + "/"; }

  // The profile page's "Allow and test" button asks for permission (only a click may).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-notify-test]");
    if (!button) return;
    var state = document.querySelector("[data-notify-state]");
    function show(permission) {
      if (state) state.textContent = permission === "granted" ? say("notifyOn", "Notifications are allowed.") : say("notifyOff", "Notifications are blocked in this browser.");
      if (permission === "granted") new Notification(say("notifyTest", "Parley notifications work."));
      tone();
    }
    if (!("Notification" in window)) return show("denied");
    if (Notification.permission === "default") Notification.requestPermission().then(show);
    else show(Notification.permission);
  });

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
    line.textContent = frame.who === "visitor" ? say("visitorTyping", "The visitor is typing…") : say("teammateTyping", "%(name)s is typing…").replace("%(name)s", frame.name || say("teammate", "A teammate"));
    if (typingTimer) clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { line.textContent = ""; }, 4000);
  }

  function onSubscribed() {
    // Events reach this page only from here on: catch up on what happened before, then
    // say "connected" (tests and the status line rely on nothing being missed after it).
    awaiting -= 1;
    if (awaiting > 0) return;
    if (page) refreshConversation(); else refreshList();
    document.documentElement.setAttribute("data-inbox-connected", "");
  }

  function handle(frame) {
    switch (frame.type) {
      case "subscribed": return onSubscribed();
      case "error": // a conversation deleted meanwhile: the inbox subscription still stands
        if (frame.code === "not_found" && awaiting > 0) onSubscribed();
        return;
      case "inbox.conversation":
        debounce(refreshList);
        debounce(refreshNavCount);
        if (frame.by === "visitor" && frame.status === "agent" && String(frame.assignee) === body.getAttribute("data-user-id")) {
          alertAgent(say("visitorWrote", "A visitor wrote in your conversation."), conversationUrl(frame.id));
        }
        return;
      case "inbox.waiting":
        setWaiting(1);
        announce(say("visitorWaiting", "A visitor is waiting for a person."));
        alertAgent(say("visitorWaiting", "A visitor is waiting for a person."), conversationUrl(frame.id));
        debounce(refreshList);
        debounce(refreshNavCount);
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
      awaiting = page ? 2 : 1;
      socket.send(JSON.stringify({ type: "subscribe.inbox" }));
      if (page) {
        socket.send(JSON.stringify({ type: "subscribe.conversation", conversation: page.getAttribute("data-conversation") }));
      }
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
