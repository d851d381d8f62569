/* Parley chat frame: the chat UI inside the iframe, on the platform's origin.
 * Contract: docs/widget-protocol.md. Model output is hostile: every message is built with DOM
 * calls (textContent, createElement), never parsed as HTML; markdown goes through the small
 * allowlist renderer below. The page runs under a strict CSP (no inline script or style). */
(() => {
  'use strict';
  const d = document;
  const $ = (id) => d.getElementById(id);
  const cfg = JSON.parse($('parley-config').textContent);
  const urls = cfg.urls || {};
  let bot = cfg.bot || {};
  const CATALOGUE = self.PARLEY_I18N;
  const MAX_IMAGES = 4;
  const MAX_IMAGE_MB = 10;
  const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'];

  /* ---------------------------------------------------------------- i18n, RTL */

  let locale = 'en';
  const t = (key, vars) => {
    const text = (CATALOGUE[locale] || CATALOGUE.en)[key] || CATALOGUE.en[key] || key;
    return text.replace(/\{(\w+)\}/g, (_, name) => (vars && name in vars ? vars[name] : ''));
  };

  function setLocale(code) {
    const short = String(code || '').slice(0, 2).toLowerCase();
    locale = CATALOGUE[short] ? short : CATALOGUE[bot.locale] ? bot.locale : 'en';
    d.documentElement.lang = locale;
    d.documentElement.dir = locale === 'ar' ? 'rtl' : 'ltr';
    for (const el of d.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of d.querySelectorAll('[data-i18n-label]')) {
      el.setAttribute('aria-label', t(el.dataset.i18nLabel));
      if (el.tagName === 'BUTTON') el.title = t(el.dataset.i18nLabel);
    }
    for (const el of d.querySelectorAll('[data-i18n-placeholder]')) {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    }
    // Strings drawn by code are redrawn in the new language.
    renderBanner();
    for (const msg of messages.values()) renderMessage(msg);
    renderStatic();
    if (!$('history').hidden) renderHistory();
  }

  /* ---------------------------------------------------------------- markdown allowlist */

  // Links: absolute http(s) only. Everything else (javascript:, data:, relative) is text.
  const safeUrl = (raw) => {
    try {
      const url = new URL(raw);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch {
      return null;
    }
  };
  const el = (tag, cls, text) => {
    const node = d.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  };
  const link = (href, parent) => {
    const a = el('a');
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.referrerPolicy = 'no-referrer';
    a.title = t('opensNewTab');
    parent.append(a);
    return a;
  };

  // One pass over inline constructs; spans are bounded so hostile input cannot make the regex
  // backtrack for long. Groups: 1-2 code, 3 image alt, 4-5 link, 6 strong, 7 strong (_),
  // 8 em, 9 em (_), 10 strike, 11 bare URL, 12 line break.
  const INLINE = new RegExp([
    '(`+)([^`][\\s\\S]{0,2000}?)\\1(?!`)',
    '!\\[([^\\]]{0,500})\\]\\([^)]{0,2000}\\)',
    '\\[([^\\]]{1,500})\\]\\(\\s*<?([^\\s)>]{1,2000})>?(?:\\s+"[^"]{0,200}")?\\s*\\)',
    '\\*\\*(?=\\S)([\\s\\S]{0,2000}?\\S)\\*\\*',
    '(?<!\\w)__(?=\\S)([\\s\\S]{0,2000}?\\S)__(?!\\w)',
    '\\*(?=[^\\s*])([\\s\\S]{0,2000}?[^\\s*])\\*(?!\\*)',
    '(?<!\\w)_(?=[^\\s_])([\\s\\S]{0,2000}?[^\\s_])_(?!\\w)',
    '~~(?=\\S)([\\s\\S]{0,2000}?\\S)~~',
    '(https?:\\/\\/[^\\s<>"\'`]*[^\\s<>"\'`.,;:!?)\\]])',
    '(\\n)'
  ].join('|'), 'g');

  // Character references in text (not in code), as CommonMark and the dashboard's renderer
  // read them: "&lt;b&gt;" shows "<b>". The result only ever becomes a text node.
  const NAMED = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
  const decode = (text) => text.replace(
    /&(?:#(\d{1,7})|#[xX]([\da-fA-F]{1,6})|(amp|lt|gt|quot|apos|nbsp));/g,
    (_, dec, hex, name) => {
      if (name) return NAMED[name];
      const n = dec ? parseInt(dec, 10) : parseInt(hex, 16);
      return n > 0 && n < 0x110000 && (n < 0xd800 || n > 0xdfff) ? String.fromCodePoint(n) : '\ufffd';
    });

  function inline(parent, text, depth = 0, links = true) {
    if (depth > 6) return parent.append(decode(text));
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) parent.append(decode(text.slice(last, m.index)));
      last = m.index + m[0].length;
      if (m[1]) {
        parent.append(el('code', null, m[2].replace(/^ (.*) $/, '$1')));
      } else if (m[3] !== undefined) {
        // Images never load: the alt text stands in for them.
        if (m[3]) parent.append(el('span', 'img-alt', '[' + m[3] + ']'));
      } else if (m[4]) {
        const href = links && safeUrl(m[5]);
        if (href) inline(link(href, parent), m[4], depth + 1, false);
        else inline(parent, m[4], depth + 1, links);
      } else if (m[6] || m[7]) {
        inline(parent.appendChild(el('strong')), m[6] || m[7], depth + 1, links);
      } else if (m[8] || m[9]) {
        inline(parent.appendChild(el('em')), m[8] || m[9], depth + 1, links);
      } else if (m[10]) {
        inline(parent.appendChild(el('del')), m[10], depth + 1, links);
      } else if (m[11]) {
        const href = links && safeUrl(m[11]);
        if (href) link(href, parent).textContent = m[11];
        else parent.append(m[11]);
      } else if (m[12]) {
        parent.append(el('br'));
      }
    }
    if (last < text.length) parent.append(decode(text.slice(last)));
    return parent;
  }

  const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
  const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
  const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
  const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const QUOTE = /^\s{0,3}>\s?(.*)$/;
  const startsBlock = (line) =>
    FENCE.test(line) || ITEM.test(line) || RULE.test(line) || HEADING.test(line) ||
    QUOTE.test(line);

  // Block constructs: paragraphs, fenced code, lists (nested by indentation), quotes,
  // headings (drawn as bold paragraphs: a chat bubble has no document outline), rules.
  function markdown(source, depth = 0) {
    const out = d.createDocumentFragment();
    const lines = String(source).replace(/\r\n?/g, '\n').split('\n');
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (!line.trim()) {
        i++;
      } else if ((m = FENCE.exec(line))) {
        const body = [];
        for (i++; i < lines.length && !lines[i].trim().startsWith(m[1]); i++) body.push(lines[i]);
        i++;
        const code = el('code', null, body.join('\n'));
        if (m[2]) code.dataset.lang = m[2];
        out.appendChild(el('pre')).append(code);
      } else if (RULE.test(line)) {
        out.append(el('hr'));
        i++;
      } else if ((m = HEADING.exec(line))) {
        inline(out.appendChild(el('p', 'h')).appendChild(el('strong')), m[2]);
        i++;
      } else if (QUOTE.test(line) && depth < 4) {
        const body = [];
        while (i < lines.length && (m = QUOTE.exec(lines[i]))) body.push(m[1]), i++;
        out.appendChild(el('blockquote')).append(markdown(body.join('\n'), depth + 1));
      } else if (ITEM.test(line) && depth < 4) {
        i = list(lines, i, out, depth);
      } else {
        const body = [];
        while (i < lines.length && lines[i].trim() && !startsBlock(lines[i])) body.push(lines[i++]);
        if (!body.length) body.push(lines[i++]); // a line that looked like a block but was not
        inline(out.appendChild(el('p')), body.join('\n'));
      }
    }
    return out;
  }

  function list(lines, i, out, depth) {
    const first = ITEM.exec(lines[i]);
    const indent = first[1].length;
    const ordered = /\d/.test(first[2]);
    const node = out.appendChild(el(ordered ? 'ol' : 'ul'));
    if (ordered && parseInt(first[2], 10) !== 1) node.start = parseInt(first[2], 10);
    let item = null;
    let nested = [];
    const flush = () => {
      if (item && nested.length) item.append(markdown(nested.join('\n'), depth + 1));
      nested = [];
    };
    for (; i < lines.length; i++) {
      const line = lines[i];
      const m = ITEM.exec(line);
      if (m && m[1].length <= indent && /\d/.test(m[2]) === ordered) {
        flush();
        item = node.appendChild(el('li'));
        inline(item, m[3]);
      } else if (!line.trim()) {
        // A blank line ends the list unless the next line is indented under the item.
        if (!(lines[i + 1] || '').startsWith(' '.repeat(indent + 2))) break;
        nested.push('');
      } else if (line.startsWith(' '.repeat(indent + 1)) && item) {
        nested.push(line.slice(Math.min(indent + 2, line.search(/\S/))));
      } else {
        break;
      }
    }
    flush();
    return i;
  }

  /* ---------------------------------------------------------------- state and storage */

  const STORE_KEY = 'parley:' + bot.key;
  let memoryStore = {};
  // The frame's own storage (the platform's origin, partitioned per host site by the
  // browser). When the browser refuses storage to a third-party frame, memory is used.
  const store = {
    get() {
      try {
        return JSON.parse(localStorage.getItem(STORE_KEY)) || {};
      } catch {
        return { ...memoryStore };
      }
    },
    set(patch) {
      const next = { ...store.get(), ...patch };
      memoryStore = next;
      try {
        localStorage.setItem(STORE_KEY, JSON.stringify(next));
      } catch {
        /* memory only */
      }
      return next;
    }
  };

  const messages = new Map(); // seq -> message (server's object plus local fields)
  const pending = new Map(); // client_id -> local visitor message not yet acknowledged
  let conversation = null;
  let lastSeq = 0;
  let host = null; // the host page's origin, trusted once the loader's init arrived
  let identity = null;
  let panelOpen = false;
  let started = false;
  let unread = 0;
  let awaitingReplyAfter = 0; // a visitor seq whose reply has not started yet
  let agentTyping = 0;
  let banner = null;
  let historyItems = [];
  let historyUpTo = 0;
  const announced = new Set();

  /* ---------------------------------------------------------------- talking to the host */

  const fragment = new URLSearchParams(location.hash.slice(1));
  const claimedHost = fragment.get('origin');

  function toHost(message) {
    // Exact target origin, never '*'. Before init only 'ready' goes out, to the origin the
    // loader wrote in our fragment: if that was a lie, the browser drops the message.
    const target = host || (message.type === 'ready' && claimedHost);
    if (target && window.parent !== window) {
      window.parent.postMessage({ parley: 1, ...message }, target);
    }
  }

  window.addEventListener('message', (event) => {
    const data = event.data;
    if (event.source !== window.parent || !data || data.parley !== 1) return;
    if (event.origin !== claimedHost) return;
    const ancestors = location.ancestorOrigins;
    if (ancestors && ancestors.length && ancestors[0] !== claimedHost) return;
    if (data.type === 'init' && !host) {
      host = claimedHost;
      identity = data.identity || null;
      setLocale(data.locale);
      // A returning visitor reconnects now so replies arriving while closed count as unread.
      if (store.get().conversation) start();
      if (data.open) setOpen(true);
      if (data.prefill) input.value = data.prefill;
    } else if (!host) {
      return;
    } else if (data.type === 'preview' && cfg.preview) {
      // The bot's edit page (on the platform, playing the loader's part): a draft config.
      applyBot(data.bot || {});
    } else if (data.type === 'open') {
      setOpen(true);
    } else if (data.type === 'close') {
      setOpen(false);
    } else if (data.type === 'locale') {
      setLocale(data.code);
    } else if (data.type === 'page') {
      if (ready) send({ type: 'page', url: String(data.url || '') });
    } else if (data.type === 'prefill') {
      input.value = String(data.text || '').slice(0, 4000);
    } else if (data.type === 'shutdown') {
      // Forget the visitor: no stored session, conversation or id; a fresh frame says ready.
      try {
        localStorage.removeItem(STORE_KEY);
      } catch {
        /* memory only */
      }
      memoryStore = {};
      disconnect();
      location.reload();
    } else if (data.type === 'identify') {
      if ((data.token || null) !== identity) {
        identity = data.token || null;
        if (started) restartSession();
      }
    }
  });

  function setOpen(open) {
    panelOpen = open;
    d.body.classList.toggle('open', open);
    if (!open) return;
    unread = 0;
    toHost({ type: 'unread', count: 0 });
    if (!started) start();
    focusComposer();
    performance.mark('parley-composer-usable');
  }

  function focusComposer() {
    if ($('history').hidden) $('input').focus({ preventScroll: true });
  }

  /* ---------------------------------------------------------------- session token */

  let refreshTimer = 0;
  const identitySubject = (token) => {
    try {
      const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return String(JSON.parse(atob(payload)).sub || '');
    } catch {
      return '';
    }
  };

  // One request at a time: the socket and an upload asking together must share one session
  // (two would make two visitors, and the upload would belong to the other one).
  let sessionPending = null;
  async function session(force) {
    const saved = store.get();
    const who = identity ? identitySubject(identity) : '';
    const fresh = saved.token && saved.exp - Date.now() > 60_000;
    if (!force && fresh && saved.origin === host && (saved.who || '') === who) {
      scheduleRefresh(saved.exp);
      return saved.token;
    }
    if (!sessionPending) {
      sessionPending = newSession(saved, who).finally(() => { sessionPending = null; });
    }
    return sessionPending;
  }

  async function newSession(saved, who) {
    const response = await fetch(urls.session, {
      method: 'POST',
      headers: cfg.preview
        ? { 'Content-Type': 'application/json', 'X-CSRFToken': cfg.csrf }
        : { 'Content-Type': 'application/json' },
      // Only the dashboard's preview proves who it is with the member's cookie (and CSRF token).
      credentials: cfg.preview ? 'same-origin' : 'omit',
      body: JSON.stringify({
        bot: bot.key,
        origin: host,
        resume: saved.resume || undefined,
        identity: identity || undefined,
        locale
      })
    });
    if (!response.ok) throw await httpError(response);
    const body = await response.json();
    const exp = Date.now() + body.expires_in * 1000;
    const switched = (saved.who || '') !== who;
    store.set({
      token: body.token, exp, resume: body.resume, origin: host, who,
      visitor: body.visitor,
      // Another person (or none) is now on this host page: their conversations differ.
      conversation: switched ? null : saved.conversation
    });
    scheduleRefresh(exp);
    return body.token;
  }

  function scheduleRefresh(exp) {
    clearTimeout(refreshTimer);
    // About a minute before expiry, get a new token and hand it to the open socket.
    refreshTimer = setTimeout(async () => {
      try {
        const token = await session(true);
        if (socket && socket.readyState === 1) socket.send(JSON.stringify({ type: 'token.refresh', token }));
      } catch (error) {
        fail(error);
      }
    }, Math.max(1000, exp - Date.now() - 60_000));
  }

  class ApiError extends Error {
    constructor(code, status, retryAfter) {
      super(code);
      this.code = code;
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  async function httpError(response) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      /* not JSON */
    }
    const retry = error.retry_after || Number(response.headers.get('Retry-After')) || 0;
    return new ApiError(error.code || 'http_' + response.status, response.status, retry);
  }

  /* ---------------------------------------------------------------- connection */

  let socket = null;
  let mode = typeof WebSocket === 'function' ? 'ws' : 'sse';
  let socketFailures = 0;
  let attempt = 0;
  let reconnectTimer = 0;
  let stableTimer = 0;
  let stream = null;
  let streamConversation = null;
  let ready = false;
  let halted = false; // a close code that needs the visitor to act before we retry
  let badTokenRetried = false;
  let quickRetries = 0; // immediate reconnects since the last `ready` (new token, resync)
  let generation = 0; // bumped by every disconnect: a connect that was overtaken gives up

  // What we have seen counts only for the conversation we have on screen (after a change of
  // visitor, for instance, the next conversation is read from its start).
  const resumeAfter = (id) => (conversation && id === conversation.id ? lastSeq : 0);

  function start() {
    if (started || !host) return;
    started = true;
    connect();
  }

  function restartSession() {
    store.set({ token: null });
    disconnect();
    connect();
  }

  function disconnect() {
    generation++;
    ready = false;
    clearTimeout(reconnectTimer);
    clearTimeout(stableTimer);
    if (socket) {
      const old = socket;
      socket = null;
      old.close(1000);
    }
    if (stream) stream.abort();
    stream = null;
  }

  function reconnect(delay) {
    disconnect();
    if (halted) return;
    // An immediate retry that keeps failing (a server that always refuses) falls back to the
    // backoff schedule instead of spinning.
    if (delay === 0 && ++quickRetries > 3) delay = null;
    if (delay == null) {
      // Exponential backoff with jitter: min(30 s, 0.5 s × 2^attempt) × random(0.5, 1).
      delay = Math.min(30_000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt++;
    }
    if (attempt > 1) showBanner('reconnecting', null, connectNow);
    reconnectTimer = setTimeout(connect, delay);
  }

  function connectNow() {
    halted = false;
    attempt = 0;
    hideBanner();
    connect();
  }

  async function connect() {
    disconnect();
    const mine = generation;
    if (!navigator.onLine) return showBanner('offline');
    let token;
    try {
      token = await session();
    } catch (error) {
      if (mine === generation) fail(error);
      return;
    }
    if (mine !== generation) return; // another connect (or a halt) came in meanwhile
    if (mode === 'ws') openSocket(token);
    else openStream(token);
  }

  function openSocket(token) {
    const ws = new WebSocket(urls.ws);
    socket = ws;
    let opened = false;
    ws.addEventListener('open', () => {
      opened = true;
      socketFailures = 0;
      const current = store.get().conversation;
      ws.send(JSON.stringify({
        type: 'hello', token, conversation: current || undefined,
        resume_after_seq: resumeAfter(current) || undefined
      }));
    });
    ws.addEventListener('message', (event) => {
      if (socket !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      handle(frame);
    });
    ws.addEventListener('close', (event) => {
      if (socket !== ws) return; // we closed it ourselves
      socket = null;
      ready = false;
      onClose(event.code, event.reason, opened);
    });
  }

  function onClose(code, reason, opened) {
    if (code === 4001 && !badTokenRetried) {
      badTokenRetried = true;
      store.set({ token: null });
      return reconnect(0);
    }
    if (code === 4001) return halt('error');
    if (code === 4002) {
      store.set({ token: null });
      return reconnect(0);
    }
    if (code === 4003) return halt('notAllowed', false);
    if (code === 4004) return halt('assistantOffline');
    if (code === 4029) {
      const seconds = Number(String(reason).split(':')[1]) || 5;
      rateLimited(seconds);
      return reconnect(seconds * 1000);
    }
    // A socket that never opened, twice in a row: WebSocket is probably blocked on this
    // network (proxy, firewall). Fall back to HTTP: POST to send, Server-Sent Events to read.
    if (!opened && mode === 'ws' && ++socketFailures >= 2) mode = 'sse';
    reconnect();
  }

  // The conversation we asked for is not this visitor's (a new anonymous visitor, say, after
  // the resume secret was refused): start from the visitor's own.
  function forgetConversation() {
    store.set({ conversation: null });
    reconnect(0);
  }

  function halt(key, retry = true) {
    halted = true;
    disconnect();
    showBanner(key, null, retry ? connectNow : null);
  }

  function fail(error) {
    if (!(error instanceof ApiError)) {
      // The network itself failed (offline, DNS, refused): retry with backoff.
      return navigator.onLine ? reconnect() : showBanner('offline');
    }
    if (error.code === 'origin_not_allowed') return halt('notAllowed', false);
    if (error.code === 'bot_disabled' || error.code === 'not_found') return halt('assistantOffline');
    if (error.status === 429) {
      rateLimited(error.retryAfter || 5);
      return reconnect((error.retryAfter || 5) * 1000);
    }
    if (error.code === 'bad_identity') {
      // The host's identity token was refused: carry on as an anonymous visitor.
      identity = null;
      return reconnect(0);
    }
    if (error.status === 401) {
      store.set({ token: null });
      return reconnect(0);
    }
    reconnect();
  }

  async function openStream(token) {
    const controller = new AbortController();
    stream = controller;
    const current = store.get().conversation;
    const query = new URLSearchParams({ after: String(resumeAfter(current)) });
    streamConversation = current || null;
    if (current) query.set('conversation', current);
    let response;
    try {
      response = await fetch(urls.events + '?' + query, {
        headers: { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' },
        credentials: 'omit',
        cache: 'no-store',
        signal: controller.signal
      });
      if (!response.ok) throw await httpError(response);
    } catch (error) {
      if (stream !== controller) return;
      if (error.code === 'not_found' && current) forgetConversation();
      else fail(error);
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const events = buffer.split(/\r?\n\r?\n/);
        buffer = events.pop();
        for (const block of events) {
          const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
          if (!data) continue; // a keep-alive comment
          try {
            handle(JSON.parse(data));
          } catch {
            /* a malformed event is skipped, the stream goes on */
          }
        }
      }
    } catch {
      /* aborted or dropped */
    }
    // The server ends a stream after a few minutes or at token expiry: read on from lastSeq.
    if (stream === controller) {
      stream = null;
      ready = false;
      reconnect(attempt === 0 ? 0 : undefined);
    }
  }

  // One way to send a client frame, over the socket or as a POST in fallback mode.
  async function send(frame) {
    if (mode === 'ws') {
      if (socket && socket.readyState === 1 && ready) {
        socket.send(JSON.stringify(frame));
        return true;
      }
      return false;
    }
    if (!ready) return false;
    try {
      const body = { ...frame };
      if (conversation && !body.conversation) body.conversation = conversation.id;
      const post = async (token) => fetch(urls.send, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token },
        credentials: 'omit',
        body: JSON.stringify(body)
      });
      let response = await post(await session());
      if (response.status === 401) response = await post(await session(true));
      if (!response.ok) {
        const error = await httpError(response);
        handle({ type: 'error', code: error.code, retry_after: error.retryAfter, client_id: frame.client_id });
        return true;
      }
      const answer = await response.json();
      for (const event of answer.events || []) handle(event);
      // The event stream follows one conversation: follow the one we are now in.
      if ((conversation ? conversation.id : null) !== streamConversation) reconnect(0);
      return true;
    } catch {
      return false;
    }
  }

  /* ---------------------------------------------------------------- server frames */

  function handle(frame) {
    switch (frame.type) {
      case 'ready': return onReady(frame);
      case 'message': return upsert(frame.message);
      case 'delta': return onDelta(frame);
      case 'ack': return onAck(frame);
      case 'typing':
        if (frame.who === 'agent') {
          agentTyping = Date.now() + 4000;
          renderTyping();
          setTimeout(renderTyping, 4100);
        }
        return;
      case 'conversations':
        historyItems = frame.items || [];
        return renderHistory();
      case 'conversation':
        // The conversation's status changed (a person took over, it was closed...).
        if (frame.conversation && conversation && frame.conversation.id === conversation.id) {
          conversation = frame.conversation;
          renderStatic();
        }
        return;
      case 'agent.joined':
        return note(t('agentJoined', { name: frame.name || t('agent') }));
      case 'error': return onError(frame);
      case 'action': return onAction(frame.action);
      default: return; // pong, and frames a newer server may add
    }
  }

  function onReady(frame) {
    ready = true;
    badTokenRetried = false;
    quickRetries = 0;
    halted = false;
    const next = frame.conversation || null;
    // Messages up to here are history, not news (no unread count, no host event).
    historyUpTo = Math.max(frame.last_seq || 0, next ? next.last_seq || 0 : 0);
    if (conversation && (!next || next.id !== conversation.id)) {
      // Another conversation (new or reopened): start the list afresh. (From none to one is
      // the first send creating it: what is on screen stays.)
      messages.clear();
      lastSeq = 0;
      announced.clear();
      $('log').replaceChildren();
      for (const msg of pending.values()) renderMessage(msg);
    }
    conversation = next;
    store.set({ conversation: next ? next.id : null });
    if (banner && banner.key !== 'rateLimited') hideBanner();
    clearTimeout(stableTimer);
    // A connection that stays up for 10 s resets the backoff.
    stableTimer = setTimeout(() => { attempt = 0; }, 10_000);
    if (mode === 'sse') attempt = 0;
    renderStatic();
    // Every send that was not acknowledged goes again, with the same client_id: the server
    // stores it once.
    for (const msg of pending.values()) if (!msg.failed) send(sendFrame(msg));
  }

  function upsert(incoming) {
    if (!incoming || typeof incoming.seq !== 'number') return;
    const known = messages.get(incoming.seq);
    const msg = known ? Object.assign(known, incoming) : { ...incoming };
    msg.points = undefined; // the server's text replaces what the deltas built
    if (msg.client_id && pending.has(msg.client_id)) {
      const local = pending.get(msg.client_id);
      pending.delete(msg.client_id);
      local.node && local.node.remove();
      msg.localPreviews = local.localPreviews;
    }
    messages.set(msg.seq, msg);
    lastSeq = Math.max(lastSeq, msg.seq);
    if (msg.role !== 'visitor' && msg.seq > awaitingReplyAfter && (msg.text || msg.status !== 'streaming')) {
      awaitingReplyAfter = 0;
    }
    renderMessage(msg);
    renderStatic();
    renderTyping();
    if (msg.role === 'assistant' || msg.role === 'agent') {
      if (msg.status === 'streaming') {
        msg.live = true;
        speak(msg, false);
      } else {
        finished(msg);
      }
    }
  }

  // Stream offsets count Unicode code points (the server's string indices), not the UTF-16
  // units of a JS string: an emoji is one code point and two units.
  function codePoints(text) {
    let count = text.length;
    for (let i = 0; i < text.length; i++) {
      const unit = text.charCodeAt(i);
      if (unit >= 0xd800 && unit < 0xdc00) count--;
    }
    return count;
  }

  function onDelta(frame) {
    let msg = messages.get(frame.seq);
    if (!msg) {
      msg = { seq: frame.seq, role: 'assistant', text: '', status: 'streaming' };
      messages.set(frame.seq, msg);
      lastSeq = Math.max(lastSeq, frame.seq);
    }
    if (msg.status !== 'streaming' && msg.status !== undefined) return; // already final
    const have = msg.points === undefined ? (msg.points = codePoints(msg.text)) : msg.points;
    const end = frame.offset + codePoints(frame.text);
    if (end <= have) return; // a repeat after a resume or a fetch
    if (frame.offset > have) {
      // A gap (an event lost between processes): ask for the missing text, once per offset.
      if (msg.fetching !== have) {
        msg.fetching = have;
        send({ type: 'reply.fetch', seq: frame.seq, offset: have });
      }
      return;
    }
    msg.text += frame.offset < have ? Array.from(frame.text).slice(have - frame.offset).join('') : frame.text;
    msg.points = end;
    msg.status = 'streaming';
    msg.live = true;
    awaitingReplyAfter = 0;
    scheduleRender(msg);
  }

  function onAck(frame) {
    const local = pending.get(frame.client_id);
    if (local) {
      // Stored: from now on it is message `seq` (the server's copy will update it in place).
      pending.delete(frame.client_id);
      local.seq = frame.seq;
      messages.set(frame.seq, local);
      lastSeq = Math.max(lastSeq, frame.seq);
      renderMessage(local);
    }
    if (frame.conversation && !conversation) {
      // The first send created the conversation.
      conversation = { id: frame.conversation, status: 'bot' };
      store.set({ conversation: frame.conversation });
    }
    // The reply starts now: show the typing indicator until its first words arrive.
    if (!frame.duplicate && (!conversation || conversation.status === 'bot')) {
      awaitingReplyAfter = frame.seq;
      renderTyping();
    }
  }

  function onError(frame) {
    toHost({ type: 'error', code: frame.code });
    const local = frame.client_id && pending.get(frame.client_id);
    if (local) {
      local.failed = frame.code;
      renderMessage(local);
    }
    if (frame.code === 'rate_limited') return rateLimited(frame.retry_after || 5);
    if (frame.code === 'conversation_closed') {
      if (conversation) conversation.status = 'closed';
      return renderStatic();
    }
    if (frame.code === 'images_not_supported') return showBanner('imageType');
    if (frame.code === 'not_found' && !ready) return forgetConversation();
    if (frame.code === 'not_found') return showBanner('error');
    if (!local) showBanner('error', null, connectNow);
  }

  // A reply has finished (or was stored complete before we connected).
  function finished(msg) {
    if (announced.has(msg.seq)) return;
    announced.add(msg.seq);
    if (msg.seq <= historyUpTo && !msg.live) return; // history replayed on connect
    speak(msg, true);
    if (msg.text) toHost({ type: 'message', role: msg.role, text: msg.text });
    if (!panelOpen) {
      unread++;
      toHost({ type: 'unread', count: unread });
    }
  }

  /* ---------------------------------------------------------------- actions */

  // An action the bot runs: a status line while it runs, a confirmation card for one that
  // changes something (nothing happens until the visitor confirms), and a result card. Cards
  // are data (title, fields, image, links, quick replies) drawn with textContent only. The
  // node sits just before its reply's bubble (seq - 0.5).
  const actionNodes = new Map();
  function onAction(action) {
    if (!action || typeof action.id !== 'string') return;
    const node = el('li', 'msg action');
    node.dataset.seq = (action.seq || lastSeq + 1) - 0.5;
    node.dataset.status = action.status;
    const state = { running: 'actionRunning', confirmed: 'actionRunning', done: 'actionDone',
      failed: 'actionFailed', declined: 'actionDeclined' }[action.status];
    if (action.status === 'awaiting_confirmation') node.append(confirmCard(action));
    else if (state) {
      const line = node.appendChild(el('p', 'action-state', t(state, { title: action.title })));
      line.setAttribute('role', 'status');
      if (action.status === 'running') line.append(dots());
    }
    if (action.card) node.append(resultCard(action.card));
    const old = actionNodes.get(action.id);
    const log = $('log');
    if (old && old.parentNode === log) log.replaceChild(node, old);
    else insertInOrder(log, node, Number(node.dataset.seq));
    actionNodes.set(action.id, node);
    if (action.status === 'awaiting_confirmation' && panelOpen) {
      $('live').append(el('p', null, t('actionConfirmAsk', { title: action.title })));
    }
  }

  function confirmCard(action) {
    const card = el('div', 'card confirm');
    card.setAttribute('role', 'group');
    card.append(el('p', 'card-title', t('actionConfirmAsk', { title: action.title })));
    card.setAttribute('aria-label', action.title);
    if (action.arguments && action.arguments.length) card.append(fieldList(action.arguments));
    const row = card.appendChild(el('div', 'card-buttons'));
    for (const [accept, key] of [[true, 'actionConfirm'], [false, 'actionCancel']]) {
      const button = row.appendChild(el('button', accept ? 'primary' : 'link', t(key)));
      button.type = 'button';
      button.addEventListener('click', () => {
        for (const b of row.querySelectorAll('button')) b.disabled = true;
        send({ type: 'action.confirm', id: action.id, accept });
      });
    }
    return card;
  }

  function fieldList(items) {
    const list = el('dl', 'card-fields');
    for (const item of items) {
      list.append(el('dt', null, item.label), el('dd', null, item.value));
    }
    return list;
  }

  function resultCard(data) {
    const card = el('div', 'card');
    if (data.image && safeUrl(data.image.url) && data.image.url.startsWith('https://')) {
      const img = card.appendChild(el('img', 'card-image'));
      img.alt = data.image.alt || '';
      img.loading = 'lazy';
      img.src = data.image.url;
    }
    if (data.title) card.append(el('p', 'card-title', data.title));
    if (data.text) card.append(el('p', 'card-text', data.text));
    if (data.fields && data.fields.length) card.append(fieldList(data.fields));
    const row = el('div', 'card-buttons');
    for (const item of data.links || []) {
      const href = safeUrl(item.url);
      if (href && href.startsWith('https://')) link(href, row).textContent = item.label;
    }
    for (const reply of data.replies || []) {
      const button = row.appendChild(el('button', 'chip', reply));
      button.type = 'button';
      button.addEventListener('click', () => submit(reply, []));
    }
    if (row.childNodes.length) card.append(row);
    return card;
  }

  /* ---------------------------------------------------------------- screen readers */

  // Streamed text reaches screen readers sentence by sentence through one polite live region
  // (re-rendering a bubble on every delta would make them read it again and again).
  function speak(msg, done) {
    if (!panelOpen || !ready || !msg.node) return;
    const text = msg.node.querySelector('.bubble').textContent;
    const from = msg.spoken || 0;
    let upto = text.length;
    if (!done) {
      const cut = Math.max(text.lastIndexOf('. '), text.lastIndexOf('! '), text.lastIndexOf('? '),
        text.lastIndexOf('\n'));
      upto = cut + 1;
    }
    if (upto <= from) return;
    msg.spoken = upto;
    const live = $('live');
    live.append(el('p', null, text.slice(from, upto).trim()));
    while (live.childNodes.length > 3) live.firstChild.remove();
  }

  /* ---------------------------------------------------------------- drawing */

  const frameQueue = new Set();
  function scheduleRender(msg) {
    if (!frameQueue.size) {
      requestAnimationFrame(() => {
        for (const m of frameQueue) {
          renderMessage(m);
          speak(m, false);
        }
        frameQueue.clear();
        renderTyping();
      });
    }
    frameQueue.add(msg);
  }

  const ROLE_LABEL = { visitor: 'you', assistant: 'assistant', agent: 'agent', system: 'system' };

  function renderMessage(msg) {
    const log = $('log');
    const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const node = el('li', 'msg ' + msg.role);
    if (msg.seq) node.dataset.seq = msg.seq;
    node.append(el('span', 'sr', (msg.role === 'agent' && msg.author) || t(ROLE_LABEL[msg.role] || 'system')));
    if (msg.role === 'agent' && msg.author) {
      const who = node.appendChild(el('span', 'author'));
      // The member's avatar, from our own origin only (the frame's CSP allows no other).
      if (msg.author_avatar && msg.author_avatar.startsWith('/')) {
        const face = who.appendChild(el('img', 'face'));
        face.alt = '';
        face.src = msg.author_avatar;
      }
      who.append(msg.author);
    }
    const bubble = node.appendChild(el('div', 'bubble'));
    bubble.dir = 'auto'; // an English reply in an Arabic panel (and vice versa) reads right
    if (msg.role === 'system') {
      bubble.textContent = systemText(msg);
    } else if (msg.role === 'visitor') {
      bubble.textContent = msg.text || '';
    } else {
      bubble.append(markdown(msg.text || ''));
      if (msg.status === 'streaming') {
        bubble.setAttribute('aria-busy', 'true');
        if (!msg.text) bubble.append(dots());
      }
    }
    const pictures = msg.attachments && msg.attachments.length ? msg.attachments : msg.localPreviews;
    if (pictures && pictures.length) {
      const row = node.appendChild(el('div', 'pictures'));
      for (const picture of pictures) {
        const img = row.appendChild(el('img'));
        img.alt = t('image');
        img.loading = 'lazy';
        // Only our own attachment URLs (same origin) or local blob previews are drawn.
        const src = new URL(picture.url, location.href);
        if (src.origin === location.origin || src.protocol === 'blob:') img.src = src.href;
      }
    }
    if (msg.citations && msg.citations.length && msg.status !== 'streaming') {
      const cites = node.appendChild(el('div', 'cites'));
      cites.append(el('span', null, t('sources') + ':'));
      for (const cite of msg.citations) {
        // A source without an address (pasted text, a file) is named by its title alone.
        const href = safeUrl(cite.url || '');
        if (href) link(href, cites).textContent = cite.title || href;
        else if (cite.title) cites.append(el('span', 'cite', cite.title));
      }
    }
    const meta = el('div', 'meta');
    if (msg.role === 'visitor' && !msg.seq) {
      meta.append(el('span', 'state', t(msg.failed ? 'notSent' : 'sending')));
      if (msg.failed) {
        const retry = meta.appendChild(el('button', 'link', t('retry')));
        retry.type = 'button';
        retry.addEventListener('click', () => {
          msg.failed = null;
          renderMessage(msg);
          send(sendFrame(msg));
        });
      }
    }
    if (msg.role === 'assistant' && (msg.status === 'incomplete' || msg.status === 'failed')) {
      // The code picks the wording; the server never sends the operator's detail here.
      const offline = msg.error && /^(offline|upstream|unavailable|connect|timeout|auth|not_found|overloaded|rate_limited)$/.test(msg.error.code || '');
      // The platform's own refusals (plan limit, suspended workspace) carry their wording.
      const refused = msg.error && /^(quota_exceeded|workspace_suspended)$/.test(msg.error.code);
      meta.append(el('span', 'state', refused ? msg.error.message : t(offline ? 'assistantOffline' : 'incomplete')));
      if (msg.seq === lastSeq) {
        const retry = meta.appendChild(el('button', 'link', t('tryAgain')));
        retry.type = 'button';
        retry.addEventListener('click', () => send({ type: 'reply.retry' }));
      }
    }
    if (msg.role === 'assistant' && msg.status === 'complete' && msg.seq) {
      meta.append(feedbackButtons(msg));
    }
    if (meta.childNodes.length) node.append(meta);
    if (msg.node && msg.node.parentNode === log) {
      // Keep focus on a feedback/retry button that is being redrawn.
      const focused = msg.node.contains(d.activeElement) && d.activeElement.dataset.focusKey;
      log.replaceChild(node, msg.node);
      if (focused) node.querySelector('[data-focus-key="' + focused + '"]')?.focus();
    } else {
      insertInOrder(log, node, msg.seq);
    }
    msg.node = node;
    if (stick) log.scrollTop = log.scrollHeight;
  }

  // System messages carry a code that the frame words in the visitor's language.
  const SYSTEM_TEXT = {
    'handoff.requested': 'handoffAsked',
    'agent.joined': 'agentJoined',
    'conversation.closed': 'conversationEnded'
  };
  function systemText(msg) {
    const key = SYSTEM_TEXT[msg.text];
    if (key) return t(key, { name: msg.author || t('agent') });
    return /^[a-z_]+(\.[a-z_]+)+$/.test(msg.text || '') ? '' : msg.text || '';
  }

  // A line in the log that only this frame shows (not a stored message).
  function note(text) {
    const node = el('li', 'msg system');
    node.append(el('div', 'bubble', text));
    $('log').append(node);
    if (panelOpen) $('live').append(el('p', null, text));
  }

  function insertInOrder(log, node, seq) {
    if (!seq) return log.append(node); // local, unsent: at the end
    for (const other of log.children) {
      const otherSeq = Number(other.dataset.seq || Infinity);
      if (otherSeq > seq) return log.insertBefore(node, other);
    }
    log.append(node);
  }

  function feedbackButtons(msg) {
    const box = el('span', 'feedback');
    for (const [value, key, path] of [
      ['up', 'helpful', 'M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6C6.2 7.9 6 8.4 6 9v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1.2-.7v-2z'],
      ['down', 'notHelpful', 'M22 3h-4v12h4V3zM2 14a2 2 0 0 0 2 2h6.3l-1 4.6v.3c0 .4.2.8.4 1.1l1.1 1 6.6-6.6c.4-.3.6-.8.6-1.4V5a2 2 0 0 0-2-2H7c-.8 0-1.5.5-1.8 1.2l-3 7.1-.2.7v2z']
    ]) {
      const button = box.appendChild(el('button', 'icon small'));
      button.type = 'button';
      button.dataset.focusKey = value;
      button.setAttribute('aria-label', t(key));
      button.title = t(key);
      button.setAttribute('aria-pressed', String(msg.feedback === value));
      button.append(icon(path));
      button.addEventListener('click', () => {
        msg.feedback = msg.feedback === value ? null : value;
        send({ type: 'feedback', seq: msg.seq, value: msg.feedback });
        renderMessage(msg);
        if (msg.feedback) $('live').append(el('p', null, t('thanks')));
      });
    }
    return box;
  }

  function icon(path) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = d.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.appendChild(d.createElementNS(ns, 'path')).setAttribute('d', path);
    return svg;
  }

  const dots = () => {
    const box = el('span', 'dots');
    box.append(el('i'), el('i'), el('i'));
    return box;
  };

  let typingNode = null;
  function renderTyping() {
    const who = awaitingReplyAfter ? 'typing' : agentTyping > Date.now() ? 'agentTyping' : null;
    if (!who) {
      typingNode?.remove();
      typingNode = null;
      return;
    }
    const log = $('log');
    if (!typingNode) {
      typingNode = el('li', 'msg assistant typing');
      typingNode.append(el('span', 'sr'), el('div', 'bubble'));
      typingNode.lastChild.append(dots());
    }
    typingNode.firstChild.textContent = t(who);
    log.append(typingNode);
    log.scrollTop = log.scrollHeight;
    if (panelOpen) {
      $('live').replaceChildren(el('p', null, t(who)));
    }
  }

  // Greeting, suggestions, closed notice and the "talk to a person" button follow the state.
  let handoffTold = null; // the conversation whose wait for a person the host was told of

  function renderStatic() {
    if (conversation && conversation.status === 'waiting' && handoffTold !== conversation.id) {
      handoffTold = conversation.id;
      toHost({ type: 'handoff' });
    }
    $('title').textContent = bot.title || bot.name || t('chat');
    const empty = !messages.size && !pending.size;
    const log = $('log');
    let greeting = log.querySelector('.greeting');
    if (bot.greeting) {
      if (!greeting) {
        greeting = el('li', 'msg assistant greeting');
        greeting.dataset.seq = '0'; // always first
        greeting.append(el('span', 'sr'), el('div', 'bubble'));
        greeting.lastChild.dir = 'auto';
        log.prepend(greeting);
      }
      greeting.firstChild.textContent = t('assistant');
      greeting.lastChild.replaceChildren(markdown(bot.greeting));
    } else {
      greeting?.remove();
    }
    const suggestions = $('suggestions');
    suggestions.replaceChildren();
    for (const question of empty ? bot.suggested_questions || [] : []) {
      const chip = suggestions.appendChild(el('button', 'chip', question));
      chip.type = 'button';
      chip.addEventListener('click', () => submit(question, []));
    }
    if (!empty && conversation && conversation.status === 'bot' && messages.size > 1) {
      const human = suggestions.appendChild(el('button', 'chip human', t('human')));
      human.type = 'button';
      human.addEventListener('click', () => {
        send({ type: 'handoff.request' });
        conversation.status = 'waiting';
        renderStatic();
        focusComposer();
      });
    }
    suggestions.hidden = !suggestions.childNodes.length;
    // Closed: the log already says so; the composer gives way to one "new conversation" button.
    const closed = conversation && conversation.status === 'closed';
    const note = $('composer-note');
    note.hidden = !closed;
    note.replaceChildren();
    if (closed) {
      const again = note.appendChild(el('button', 'chip', t('newConversation')));
      again.type = 'button';
      again.addEventListener('click', () => $('new-btn').click());
    }
    $('composer-row').hidden = !!closed;
    $('input').disabled = !!closed;
    $('attach-btn').hidden = !bot.accepts_images;
    // The model's state matters only while the bot answers; not once a person has the chat.
    const botAnswers = !conversation || conversation.status === 'bot';
    if (bot.status === 'offline' && botAnswers && !banner) {
      showBanner('assistantOffline', null, connectNow);
    } else if (!botAnswers && banner && banner.key === 'assistantOffline') {
      hideBanner();
    }
  }

  function showBanner(key, vars, retry) {
    banner = { key, vars, retry };
    renderBanner();
  }
  function hideBanner() {
    banner = null;
    renderBanner();
  }
  function renderBanner() {
    const box = $('banner');
    box.hidden = !banner;
    if (!banner) return;
    $('banner-text').textContent = t(banner.key, banner.vars);
    const retry = $('banner-retry');
    retry.hidden = !banner.retry;
  }
  $('banner-retry').addEventListener('click', () => banner && banner.retry && banner.retry());

  let countdown = 0;
  function rateLimited(seconds) {
    clearInterval(countdown);
    let left = Math.ceil(seconds);
    showBanner('rateLimited', { n: left });
    countdown = setInterval(() => {
      left--;
      if (left <= 0) {
        clearInterval(countdown);
        if (banner && banner.key === 'rateLimited') hideBanner();
        for (const msg of pending.values()) {
          if (msg.failed === 'rate_limited') {
            msg.failed = null;
            renderMessage(msg);
            send(sendFrame(msg));
          }
        }
      } else if (banner && banner.key === 'rateLimited') {
        showBanner('rateLimited', { n: left });
      }
    }, 1000);
  }

  /* ---------------------------------------------------------------- composer */

  const input = $('input');
  let attachments = []; // {file, url (blob preview), id?, uploading, error}

  const sendFrame = (msg) => ({
    type: 'message.send', client_id: msg.client_id, text: msg.text,
    attachment_ids: msg.attachment_ids && msg.attachment_ids.length ? msg.attachment_ids : undefined
  });

  async function submit(text, files) {
    text = text.trim();
    if (!text && !files.length) return;
    if (conversation && conversation.status === 'closed') return;
    if (!started) start();
    const msg = {
      role: 'visitor', text, client_id: crypto.randomUUID(), status: 'complete',
      attachment_ids: files.map((f) => f.id),
      localPreviews: files.map((f) => ({ url: f.url }))
    };
    pending.set(msg.client_id, msg);
    renderMessage(msg);
    renderStatic();
    $('log').scrollTop = $('log').scrollHeight;
    if (!(await send(sendFrame(msg))) && !navigator.onLine) showBanner('offline');
    // Otherwise it goes out when the connection is ready (onReady resends what is pending).
  }

  $('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    if (attachments.some((a) => a.uploading)) return;
    const files = attachments.filter((a) => a.id);
    if (!input.value.trim() && !files.length) return;
    submit(input.value, files);
    input.value = '';
    attachments = [];
    renderPreviews();
    resize();
    input.focus();
  });

  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('composer').requestSubmit();
    }
  });

  let lastTyping = 0;
  input.addEventListener('input', () => {
    resize();
    if (Date.now() - lastTyping > 3000 && input.value) {
      lastTyping = Date.now();
      send({ type: 'typing' });
    }
  });

  function resize() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 140) + 'px';
  }

  /* ---------------------------------------------------------------- images */

  function addFiles(list) {
    if (!bot.accepts_images) return;
    for (const file of list) {
      if (attachments.length >= MAX_IMAGES) return showBanner('imageCount', { n: MAX_IMAGES });
      if (!IMAGE_TYPES.includes(file.type)) {
        showBanner('imageType');
        continue;
      }
      if (file.size > MAX_IMAGE_MB * 1024 * 1024) {
        showBanner('imageSize', { n: MAX_IMAGE_MB });
        continue;
      }
      const item = { file, url: URL.createObjectURL(file), uploading: true };
      attachments.push(item);
      upload(item);
    }
    renderPreviews();
  }

  async function upload(item) {
    try {
      if (!started) start();
      const form = new FormData();
      form.append('file', item.file);
      const post = async (token) => fetch(urls.upload, {
        method: 'POST', body: form, credentials: 'omit',
        headers: { Authorization: 'Bearer ' + token }
      });
      let response = await post(await session());
      if (response.status === 401) response = await post(await session(true));
      if (!response.ok) throw await httpError(response);
      item.id = (await response.json()).id;
    } catch (error) {
      item.error = true;
      attachments = attachments.filter((a) => a !== item);
      if (error.status === 429) rateLimited(error.retryAfter || 5);
      else showBanner(error.code === 'unsupported_media' ? 'imageType' : error.code === 'too_large' ? 'imageSize' : 'uploadFailed', { n: MAX_IMAGE_MB });
    }
    item.uploading = false;
    renderPreviews();
  }

  function renderPreviews() {
    const box = $('previews');
    box.replaceChildren();
    for (const item of attachments) {
      const li = box.appendChild(el('li', item.uploading ? 'uploading' : ''));
      const img = li.appendChild(el('img'));
      img.src = item.url;
      img.alt = t(item.uploading ? 'uploading' : 'image');
      const remove = li.appendChild(el('button', 'icon small remove'));
      remove.type = 'button';
      remove.setAttribute('aria-label', t('remove'));
      remove.append(icon('M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z'));
      remove.addEventListener('click', () => {
        attachments = attachments.filter((a) => a !== item);
        renderPreviews();
        input.focus();
      });
    }
    box.hidden = !attachments.length;
    $('send-btn').disabled = attachments.some((a) => a.uploading);
  }

  $('attach-btn').addEventListener('click', () => $('file').click());
  $('file').addEventListener('change', (event) => {
    addFiles(event.target.files);
    event.target.value = '';
  });
  input.addEventListener('paste', (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length && bot.accepts_images) {
      event.preventDefault();
      addFiles(files);
    }
  });
  let dragDepth = 0;
  const app = $('app');
  app.addEventListener('dragenter', (event) => {
    if (!bot.accepts_images || !event.dataTransfer?.types.includes('Files')) return;
    dragDepth++;
    $('drop').hidden = false;
  });
  app.addEventListener('dragleave', () => {
    if (--dragDepth <= 0) {
      dragDepth = 0;
      $('drop').hidden = true;
    }
  });
  app.addEventListener('dragover', (event) => event.preventDefault());
  app.addEventListener('drop', (event) => {
    event.preventDefault();
    dragDepth = 0;
    $('drop').hidden = true;
    addFiles(event.dataTransfer?.files || []);
  });

  /* ---------------------------------------------------------------- header: history, new */

  $('close-btn').addEventListener('click', () => toHost({ type: 'close' }));
  $('new-btn').addEventListener('click', () => {
    showHistory(false);
    if (!started) start();
    send({ type: 'conversation.new' });
    input.focus();
  });
  $('history-btn').addEventListener('click', () => showHistory($('history').hidden));
  $('back-btn').addEventListener('click', () => showHistory(false));

  function showHistory(show) {
    $('history').hidden = !show;
    $('chat').hidden = show;
    $('history-btn').setAttribute('aria-expanded', String(show));
    if (show) {
      if (!started) start();
      historyItems = null;
      renderHistory();
      send({ type: 'conversations.list' });
      $('history-title').focus();
    } else {
      $('history-btn').focus();
    }
  }

  function renderHistory() {
    const list = $('history-list');
    list.replaceChildren();
    const items = historyItems || [];
    $('history-empty').hidden = historyItems === null || items.length > 0;
    const when = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
    for (const item of items) {
      const button = list.appendChild(el('li')).appendChild(el('button', 'conv'));
      button.type = 'button';
      button.append(el('span', 'preview', item.preview || t('newConversation')));
      const date = item.updated_at || item.created_at;
      const states = [];
      if (conversation && item.id === conversation.id) states.push(t('current'));
      if (item.status === 'closed') states.push(t('closedLabel'));
      button.append(el('span', 'when', (date ? when.format(new Date(date)) : '') +
        (states.length ? ' · ' + states.join(', ') : '')));
      button.addEventListener('click', () => {
        showHistory(false);
        if (!conversation || item.id !== conversation.id) {
          send({ type: 'conversation.open', conversation: item.id });
        }
        focusComposer();
      });
    }
  }

  /* ---------------------------------------------------------------- keyboard, network */

  d.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    if (!$('history').hidden) return showHistory(false);
    toHost({ type: 'close' });
  });

  window.addEventListener('online', () => {
    if (started) connectNow();
  });
  window.addEventListener('offline', () => showBanner('offline'));

  function applyBot(next) {
    bot = { ...bot, ...next };
    const look = bot.appearance || {};
    // CSSOM, not a style attribute: allowed under the frame's CSP.
    if (/^#[0-9a-f]{3,8}$/i.test(look.accent || '')) d.documentElement.style.setProperty('--accent', look.accent);
    d.documentElement.dataset.theme = look.theme || 'auto';
    setLocale(locale === 'en' && bot.locale ? bot.locale : locale);
  }

  applyBot({});
  d.body.classList.toggle('preview', !!cfg.preview);
  toHost({ type: 'ready' });
  // Test and debugging hook: the pure renderer, reachable from the frame's own console only.
  self.parleyMarkdown = markdown;
})();
