/*
 * Escala web chat widget (Apache-2.0). One tag adds a chat bubble to a page:
 *
 *   <script src="https://bot.example.com/webchat/webchat.js" async
 *           data-locale="pt-BR" data-title="Suporte"
 *           data-user-id="42" data-user-hash="<hex HMAC-SHA256 from your back end>"></script>
 *
 * Plain JavaScript, no build step. Every text is rendered with textContent, never
 * as HTML. Transport: WebSocket, reconnecting with backoff and resuming from the last
 * message id it has; after two sockets that never open it falls back to SSE + POST.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.EscalaWebchat) return;

  var TEXTS = {
    "pt-BR": {
      title: "Atendimento", open: "Abrir o chat", close: "Fechar o chat",
      placeholder: "Escreva sua mensagem…", send: "Enviar", typing: "digitando…",
      reconnecting: "Reconectando…", ticket: "Chamado", you: "Você",
      textOnly: "Por enquanto o chat aceita só texto: descreva por escrito, por favor.",
      identity: "Não conseguimos confirmar sua identidade. Recarregue a página.",
      origin: "Este site não tem permissão para usar o chat.",
      tooLong: "Mensagem longa demais (máximo de {max} caracteres).",
      notSent: "não enviada", star: "{n} de 5", rate: "Avalie de 1 a 5 estrelas",
      states: { queued: "na fila", assigned: "em atendimento", resolved: "resolvido", closed: "encerrado" }
    },
    en: {
      title: "Support", open: "Open chat", close: "Close chat",
      placeholder: "Type your message…", send: "Send", typing: "typing…",
      reconnecting: "Reconnecting…", ticket: "Ticket", you: "You",
      textOnly: "The chat takes text only for now: please describe it in writing.",
      identity: "We could not verify your identity. Please reload the page.",
      origin: "This site is not allowed to use the chat.",
      tooLong: "Message too long (at most {max} characters).",
      notSent: "not sent", star: "{n} of 5", rate: "Rate from 1 to 5 stars",
      states: { queued: "queued", assigned: "in progress", resolved: "resolved", closed: "closed" }
    }
  };

  var data = script.dataset;
  var src = new URL(script.src, location.href);
  var base = (data.server || src.href.replace(/\/webchat\.js(\?.*)?$/, "")).replace(/\/$/, "");
  var wsBase = base.replace(/^http/, "ws");
  var locale = pickLocale(data.locale || document.documentElement.lang || navigator.language || "");
  var T = TEXTS[locale];
  var maxChars = 2000;

  function pickLocale(value) {
    return /^pt/i.test(value) ? "pt-BR" : "en";
  }
  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, key) { return String(values[key]); });
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  // -- the page --------------------------------------------------------------------
  var host = el("div");
  host.id = "escala-webchat";
  var root = host.attachShadow({ mode: "open" });
  var css = el("link");
  css.rel = "stylesheet";
  css.href = base + "/webchat.css";
  root.appendChild(css);

  var bubble = el("button", "bubble");
  bubble.type = "button";
  bubble.setAttribute("aria-label", T.open);
  bubble.appendChild(el("span", "bubble-icon", "\u2709"));
  var panel = el("section", "panel");
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", data.title || T.title);
  var header = el("header");
  var title = el("span", "title", data.title || T.title);
  var badge = el("span", "ticket");
  badge.hidden = true;
  var closer = el("button", "close", "\u00d7");
  closer.type = "button";
  closer.setAttribute("aria-label", T.close);
  header.append(title, badge, closer);
  var status = el("div", "status");
  status.hidden = true;
  var log = el("ol", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  var typing = el("div", "typing");
  typing.hidden = true;
  typing.append(el("span", "dot"), el("span", "dot"), el("span", "dot"), el("span", "typing-text", T.typing));
  var notice = el("div", "notice");
  notice.hidden = true;
  notice.setAttribute("role", "status");
  var form = el("form", "composer");
  var input = el("textarea", "input");
  input.rows = 1;
  input.placeholder = T.placeholder;
  input.setAttribute("aria-label", T.placeholder);
  var sendButton = el("button", "send", T.send);
  sendButton.type = "submit";
  form.append(input, sendButton);
  panel.append(header, status, log, typing, notice, form);
  root.append(bubble, panel);
  (document.body || document.documentElement).appendChild(host);

  function setOpen(open) {
    panel.hidden = !open;
    bubble.hidden = open;
    if (open) {
      input.focus();
      log.scrollTop = log.scrollHeight;
    }
  }
  bubble.addEventListener("click", function () { setOpen(true); });
  closer.addEventListener("click", function () { setOpen(false); });

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }
  function showStatus(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  // -- messages ------------------------------------------------------------------------
  var seen = {};          // line id -> its element
  var byCid = {};         // client id -> the element of a message this page sent
  var pending = [];       // frames not yet acknowledged, in order
  var lastId = null;

  function addLine(frame) {
    if (frame.id && seen[frame.id]) return seen[frame.id];
    var item = frame.cid && byCid[frame.cid];
    if (!item) {
      item = el("li", "msg " + (frame.dir || "bot"));
      if (frame.author) item.appendChild(el("div", "author", frame.author));
      item.appendChild(el("div", "text", frame.text));
      log.appendChild(item);
      if (frame.cid) byCid[frame.cid] = item;
    }
    if (frame.id) {
      seen[frame.id] = item;
      item.setAttribute("data-id", frame.id);
      item.classList.remove("pending");
      lastId = frame.id;
    }
    if (frame.choices && frame.choices.length) addChoices(item, frame.choices);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function addChoices(item, choices) {
    var old = item.querySelector(".choices, .stars");
    if (old) old.remove();
    var csat = choices.every(function (c) { return /^csat:[1-5]$/.test(c.id); });
    var group = el("div", csat ? "stars" : "choices");
    group.setAttribute("role", "group");
    if (csat) group.setAttribute("aria-label", T.rate);
    choices.forEach(function (choice) {
      var button = el("button", csat ? "star" : "choice", csat ? "\u2605" : choice.label);
      button.type = "button";
      button.setAttribute("data-choice", choice.id);
      if (csat) {
        var n = Number(choice.id.slice(5));
        button.setAttribute("aria-label", fill(T.star, { n: n }) + " (" + choice.label + ")");
        button.title = choice.label;
        button.addEventListener("mouseenter", function () { light(group, n); });
        button.addEventListener("mouseleave", function () { light(group, 0); });
      }
      button.addEventListener("click", function () {
        if (csat) light(group, Number(choice.id.slice(5)));
        Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) { b.disabled = true; });
        button.classList.add("picked");
        sendMessage(choice.label, choice.id);
      });
      group.appendChild(button);
    });
    item.appendChild(group);
  }

  function light(group, n) {
    Array.prototype.forEach.call(group.querySelectorAll(".star"), function (star, i) {
      star.classList.toggle("lit", i < n);
    });
  }

  function newCid() {
    var bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function sendMessage(text, choice) {
    if (!choice && text.length > maxChars) {
      showNotice(fill(T.tooLong, { max: maxChars }));
      return false;
    }
    showNotice("");
    var frame = { t: "msg", cid: newCid(), text: text };
    if (choice) frame.choice = choice;
    var item = addLine({ dir: "in", text: text, cid: frame.cid });
    item.classList.add("pending");
    pending.push(frame);
    transmit(frame);
    return true;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (text && sendMessage(text, null)) input.value = "";
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });
  function refuseFiles(event, files) {
    if (files && files.length) {
      event.preventDefault();
      showNotice(T.textOnly);
    }
  }
  input.addEventListener("paste", function (e) { refuseFiles(e, e.clipboardData && e.clipboardData.files); });
  panel.addEventListener("dragover", function (e) { e.preventDefault(); });
  panel.addEventListener("drop", function (e) { refuseFiles(e, e.dataTransfer && e.dataTransfer.files); });

  function acknowledged(cid) {
    pending = pending.filter(function (f) { return f.cid !== cid; });
    var item = byCid[cid];
    if (item && !item.getAttribute("data-id")) item.classList.add("sent");
  }

  function handle(frame) {
    switch (frame.t) {
      case "m": addLine(frame); break;
      case "choices": if (seen[frame.id]) addChoices(seen[frame.id], frame.choices); break;
      case "ack": acknowledged(frame.cid); break;
      case "notice":
        showNotice(frame.text);
        if (frame.cid) {
          pending = pending.filter(function (f) { return f.cid !== frame.cid; });
          var item = byCid[frame.cid];
          if (item) {
            item.classList.remove("pending");
            item.classList.add("failed");
            item.appendChild(el("div", "failed-text", T.notSent));
          }
        }
        break;
      case "typing": typing.hidden = !frame.on; break;
      case "ticket":
        badge.hidden = !frame.number;
        if (frame.number) {
          var state = T.states[frame.state] || frame.state || "";
          badge.textContent = T.ticket + " #" + frame.number + (frame.tier ? " \u00b7 " + frame.tier : "") +
            (state ? " \u00b7 " + state : "");
          badge.setAttribute("data-number", String(frame.number));
        }
        break;
    }
  }

  // -- transport ---------------------------------------------------------------------------
  var mode = data.transport === "sse" ? "sse" : "ws";
  var ws = null, source = null, token = null, connected = false, stopped = false;
  var attempt = 0, wsFailures = 0, timer = null;

  function transmit(frame) {
    if (!connected) return; // kept in `pending`, sent on (re)connect
    if (mode === "ws" && ws) ws.send(JSON.stringify(frame));
    else if (mode === "sse") post(frame);
  }

  function flush() {
    pending.slice().forEach(transmit);
  }

  function fatal(text) {
    stopped = true;
    showStatus(text);
    input.disabled = true;
    sendButton.disabled = true;
  }

  function retryLater() {
    connected = false;
    if (stopped || timer) return;
    attempt += 1;
    showStatus(T.reconnecting);
    var delay = Math.min(8000, 250 * Math.pow(2, attempt - 1)) * (0.5 + Math.random() / 2);
    timer = setTimeout(function () { timer = null; connect(); }, delay);
  }

  function online() {
    connected = true;
    attempt = 0;
    showStatus("");
    flush();
  }

  function connect() {
    if (stopped) return;
    var body = { locale: locale };
    if (data.userId) {
      body.user_id = data.userId;
      body.user_hash = data.userHash || "";
    }
    fetch(base + "/session", {
      method: "POST",
      credentials: "include",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (response.status === 403) {
          fatal(answer.error === "identity" ? T.identity : T.origin);
          return;
        }
        if (!response.ok) throw new Error("session " + response.status);
        token = answer.token;
        maxChars = answer.max_message_chars || maxChars;
        input.maxLength = maxChars;
        if (mode === "ws") openSocket(); else openStream();
      });
    }).catch(retryLater);
  }

  function query() {
    return "?token=" + encodeURIComponent(token) + (lastId ? "&last=" + encodeURIComponent(lastId) : "");
  }

  function openSocket() {
    var opened = false, socket;
    try {
      socket = new WebSocket(wsBase + "/ws" + query());
    } catch (e) {
      wsFailures += 1;
      if (wsFailures >= 2) mode = "sse";
      retryLater();
      return;
    }
    ws = socket;
    socket.onopen = function () { opened = true; wsFailures = 0; online(); };
    socket.onmessage = function (event) {
      try { handle(JSON.parse(event.data)); } catch (e) { /* a frame we do not know */ }
    };
    socket.onclose = function () {
      if (ws === socket) ws = null;
      typing.hidden = true;
      if (!opened) {
        wsFailures += 1;
        if (wsFailures >= 2) mode = "sse"; // WebSocket blocked on this network
      }
      retryLater();
    };
  }

  function openStream() {
    var stream = new EventSource(base + "/events" + query());
    source = stream;
    stream.onopen = online;
    stream.onmessage = function (event) {
      try { handle(JSON.parse(event.data)); } catch (e) { /* a frame we do not know */ }
    };
    stream.onerror = function () {
      // Reconnect ourselves: the token may have expired, and `last` must be ours.
      stream.close();
      if (source === stream) source = null;
      retryLater();
    };
  }

  function post(frame) {
    fetch(base + "/messages?token=" + encodeURIComponent(token), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(frame)
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (answer.t) handle(answer);
        else throw new Error("post " + response.status); // expired token, server trouble
      });
    }).catch(function () {
      // Still pending: sent again on the next connection (the server dedupes it).
      if (source) { source.close(); source = null; }
      retryLater();
    });
  }

  window.EscalaWebchat = {
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    get transport() { return mode; },
    get connected() { return connected; }
  };
  if (data.open === "true") setOpen(true);
  connect();
})();
