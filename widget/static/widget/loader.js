/* Parley loader, served at /widget.js (docs/widget-protocol.md, sections 1 and 7).
 * It draws the launcher and, on first open (or as a prefetch when the visitor hovers it or the
 * page goes idle), the chat frame, which lives on the platform's origin. It adds one element to
 * the host page, styled inside a closed shadow root, and one global: Parley.
 * Source of loader.min.js: `make widget-assets` rebuilds it, a test checks it is current. */
(function (w, d) {
  'use strict';
  var me = d.currentScript || d.querySelector('script[src*="/widget.js"]');
  if (!me || w.Parley && w.Parley.v) return; // loaded twice: the first copy keeps working
  var platform = new URL(me.src).origin;
  var queued = w.Parley && w.Parley.q || [];
  var handlers = { open: [], close: [], message: [], ready: [], unread: [], handoff: [], error: [] };
  var warned = {};
  var prefill = '';
  var later = [];
  var isOpen = false;
  var frameReady = false;
  var bot, locale, identity, config, root, button, badge, panel, frame;

  // The launcher's two strings; everything else is translated inside the frame.
  var WORDS = {
    en: ['Open chat', 'Close chat'],
    fr: ['Ouvrir la discussion', 'Fermer la discussion'],
    es: ['Abrir el chat', 'Cerrar el chat'],
    de: ['Chat öffnen', 'Chat schließen'],
    ar: ['فتح المحادثة', 'إغلاق المحادثة']
  };
  function lang() {
    var code = String(locale || config && config.locale || 'en').slice(0, 2).toLowerCase();
    return WORDS[code] ? code : 'en';
  }

  // Frame → loader: only from the platform's origin and only from our own iframe's window.
  w.addEventListener('message', function (event) {
    var data = event.data;
    if (!frame || event.origin !== platform || event.source !== frame.contentWindow) return;
    if (!data || data.parley !== 1) return;
    if (data.type === 'ready') {
      // The frame is listening; it trusts its host origin once this arrives from its parent.
      frameReady = true;
      post({ type: 'init', locale: lang(), identity: identity, open: isOpen, prefill: prefill });
      emit('ready');
    } else if (data.type === 'close') {
      setOpen(false, true);
    } else if (data.type === 'unread') {
      badge.textContent = data.count > 9 ? '9+' : data.count || '';
      badge.hidden = !data.count || isOpen;
      emit('unread', { count: data.count || 0 });
    } else if (data.type === 'message' && data.text) {
      // A failed reply has no text: it is not a message the host should act on.
      emit('message', { role: data.role, text: data.text });
    } else if (data.type === 'handoff' || data.type === 'error') {
      emit(data.type, { code: data.code });
    }
  });

  function post(message) {
    message.parley = 1;
    // Exact target origin: the frame is on the platform's origin, never '*'.
    if (frameReady) frame.contentWindow.postMessage(message, platform);
  }

  function emit(name, detail) {
    handlers[name].forEach(function (fn) {
      // One host handler that throws must not stop the others (nor the widget).
      try { fn(detail); } catch (error) { setTimeout(function () { throw error; }); }
    });
  }

  function makeFrame() {
    if (frame) return;
    frame = d.createElement('iframe');
    frame.title = config.title || config.name || 'Chat';
    frame.setAttribute('allow', 'clipboard-write');
    // The host's origin travels in the fragment (never sent to a server) so the frame knows
    // where to answer; the visitor's session token never leaves the frame.
    frame.src = platform + '/widget/frame/' + encodeURIComponent(bot) + '#origin=' +
      encodeURIComponent(location.origin);
    panel.appendChild(frame);
  }

  function setOpen(open, fromFrame) {
    if (open === isOpen) return;
    isOpen = open;
    makeFrame();
    panel.hidden = !open;
    root.host.classList.toggle('open', open);
    label();
    post({ type: open ? 'open' : 'close' });
    if (open) {
      badge.hidden = true;
      frame.focus();
    } else if (fromFrame) {
      button.focus(); // focus returns to the launcher the visitor came from
    }
    emit(open ? 'open' : 'close');
  }

  function label() {
    button.setAttribute('aria-expanded', isOpen);
    button.setAttribute('aria-label', WORDS[lang()][isOpen ? 1 : 0]);
  }

  var CSS = ':host{all:initial!important}' +
    '.l{position:fixed;z-index:2147483000;bottom:20px;right:20px;width:56px;height:56px;' +
    'border:0;border-radius:50%;padding:0;margin:0;cursor:pointer;color:#fff;' +
    'box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;' +
    'justify-content:center;transition:transform .15s}' +
    '.l:hover{transform:scale(1.06)}.l:focus-visible{outline:3px solid #000;outline-offset:3px}' +
    '.l svg{width:28px;height:28px;fill:currentColor}.l img{width:100%;height:100%;' +
    'border-radius:50%;object-fit:cover}.x{display:none}' +
    ':host(.open) .c{display:none}:host(.open) .x{display:block}' +
    '.b{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;' +
    'box-sizing:border-box;border-radius:10px;background:#e03131;color:#fff;' +
    'font:700 12px/20px system-ui,sans-serif;text-align:center}[hidden]{display:none!important}' +
    '.p{position:fixed;z-index:2147483000;bottom:88px;right:20px;width:380px;' +
    'height:min(640px,calc(100vh - 108px));border-radius:14px;overflow:hidden;' +
    'box-shadow:0 8px 32px rgba(0,0,0,.28);background:#fff}' +
    'iframe{border:0;width:100%;height:100%;display:block}' +
    ':host(.left) .l,:host(.left) .p{right:auto;left:20px}' +
    // Phones: the panel takes the whole screen and the frame's own close button takes over.
    '@media (max-width:480px){.p{inset:0;width:auto;height:auto;border-radius:0}' +
    ':host(.open) .l{display:none}}';

  var PATHS = {
    chat: 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z',
    help: 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 16h-2v-2h2v2zm2.1-7.8-.9.9C13.5 11.8 13' +
      ' 12.5 13 14h-2v-.5c0-1.1.4-2.1 1.2-2.8l1.2-1.3A2 2 0 1 0 10 8H8a4 4 0 1 1 7.1 2.2z',
    sparkle: 'M12 2l2.4 7.6L22 12l-7.6 2.4L12 22l-2.4-7.6L2 12l7.6-2.4z'
  };
  function svg(cls, path) {
    return '<svg class="' + cls + '" viewBox="0 0 24 24" aria-hidden="true"><path d="' + path +
      '"/></svg>';
  }

  function draw() {
    var look = config.appearance || {};
    var host = d.createElement('parley-widget');
    root = host.attachShadow({ mode: 'closed' });
    if (root.adoptedStyleSheets) {
      // A constructed sheet needs no 'unsafe-inline' in the host page's CSP.
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(d.createElement('style')).textContent = CSS;
    }
    panel = root.appendChild(d.createElement('div'));
    panel.className = 'p';
    panel.hidden = true;
    button = root.appendChild(d.createElement('button'));
    button.className = 'l';
    button.type = 'button';
    button.style.background = look.accent || '#3b5bdb';
    // Constant markup only: no text from outside ever goes through innerHTML.
    button.innerHTML = svg('c', PATHS[look.launcher] || PATHS.chat) +
      svg('x', 'M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 ' +
        '17.6 10.6 12 5 6.4z');
    if (look.launcher === 'avatar' && /^https:\/\//.test(look.avatar_url)) {
      var img = d.createElement('img');
      img.className = 'c';
      img.alt = '';
      img.src = look.avatar_url;
      button.replaceChild(img, button.firstChild);
    }
    badge = button.appendChild(d.createElement('span'));
    badge.className = 'b';
    badge.hidden = true;
    host.classList.toggle('left', look.position === 'left');
    label();
    button.addEventListener('click', function () { setOpen(!isOpen); });
    // Prefetch: hovering or focusing the launcher is a strong hint the visitor will open it.
    button.addEventListener('pointerenter', makeFrame);
    button.addEventListener('focus', makeFrame);
    root.addEventListener('keydown', function (event) {
      if (event.key === 'Escape' && isOpen) setOpen(false, true);
    });
    d.body.appendChild(host);
    // Idle prefetch: the frame is ready before the first click, and a returning visitor's
    // frame reconnects so that a reply arriving while the panel is closed counts as unread.
    (w.requestIdleCallback || setTimeout)(makeFrame, { timeout: 4000 });
  }

  function api(command, value, fn) {
    if (/^(open|close|toggle)$/.test(command)) {
      // Before the launcher exists (config still on its way) these wait for it.
      if (!root) later.push([command]);
      else setOpen(command === 'toggle' ? !isOpen : command === 'open');
    } else if (command === 'init') {
      bot = value && value.key;
      locale = value && value.locale || locale;
    } else if (command === 'identify') {
      identity = value && value.token;
      post({ type: 'identify', token: identity });
    } else if (command === 'setLocale') {
      locale = value;
      post({ type: 'locale', code: lang() });
      if (button) label();
    } else if (command === 'on' && handlers[value] && typeof fn === 'function') {
      handlers[value].push(fn);
    } else if (command === 'off' && handlers[value]) {
      handlers[value] = fn ? handlers[value].filter(function (h) { return h !== fn; }) : [];
    } else if (command === 'show' || command === 'hide') {
      if (!root) later.push([command]);
      else root.host.style.display = command === 'hide' ? 'none' : '';
    } else if (command === 'prefill') {
      prefill = String(value || '').slice(0, 4000);
      post({ type: 'prefill', text: prefill });
    } else if (command === 'update') {
      // A single-page app changed page: agents see where the visitor is now.
      post({ type: 'page', url: value && value.url || location.href });
    } else if (command === 'shutdown') {
      // The visitor logged out: forget them (the frame drops its stored session and visitor).
      identity = null;
      prefill = '';
      if (root) setOpen(false);
      if (badge) badge.hidden = true;
      post({ type: 'shutdown' });
    } else if (!warned[command]) {
      warned[command] = 1;
      console.warn('Parley: unknown command ' + command);
    }
  }

  w.Parley = function () { api.apply(null, arguments); };
  w.Parley.v = 1;
  queued.forEach(function (args) { api.apply(null, args); });

  // A host page whose CSP refuses our config request: say so, not "allowed origins".
  var blocked = '';
  d.addEventListener('securitypolicyviolation', function (event) {
    if (String(event.blockedURI).indexOf(platform) === 0) blocked = event.effectiveDirective;
  });

  function start() {
    if (!bot) return console.warn("Parley: first Parley('init', {key})");
    // The config answers only to an allowed origin (CORS), so a page elsewhere gets no
    // launcher at all rather than a broken one.
    // The page's path (no query) tells the bot's owner where the widget was last seen.
    fetch(platform + '/widget/config/' + encodeURIComponent(bot) + '?page=' +
      encodeURIComponent(location.pathname), { credentials: 'omit' })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (body) {
        config = body;
        draw();
        later.forEach(function (args) { api.apply(null, args); });
      })
      .catch(function () {
        // Later: the violation event may come after the failed fetch.
        setTimeout(function () {
          console.warn('Parley: not available on ' + location.origin + (blocked
            ? ': its Content-Security-Policy blocks ' + blocked
            : ' (not an allowed origin?)'));
        }, 100);
      });
  }
  if (d.body) start(); else d.addEventListener('DOMContentLoaded', start);
})(window, document);
