// A conversation, live: the socket /ws/chat/{id}/ (frames of DESIGN.md section 5), sending with
// a client_id (a resend after a reconnect is never stored twice), resume after reconnects
// with backoff, typing indicator, read receipts, and earlier messages loaded upwards.
// User text only ever becomes text nodes; links are anchors built here (no innerHTML).
(function () {
  "use strict";

  var root = document.querySelector("[data-chat]");
  if (!root) {
    return;
  }
  var conversationId = root.dataset.conversation;
  var userId = Number(root.dataset.user);
  var otherId = Number(root.dataset.other);
  var otherRead = Number(root.dataset.otherRead) || 0;
  var messagesApi = root.dataset.messagesApi;
  var list = root.querySelector("[data-messages]");
  var log = root.querySelector("[data-log]");
  var status = root.querySelector("[data-connection]");
  var presence = root.querySelector("[data-presence]");
  var typing = root.querySelector("[data-typing]");
  var olderButton = root.querySelector("[data-older]");
  var form = root.querySelector("[data-compose]");
  var bodyInput = root.querySelector("[data-body]");
  var fileInput = root.querySelector("[data-attachment]");
  var errorBox = root.querySelector("[data-error]");
  var label = function (name) {
    return root.dataset["label" + name.charAt(0).toUpperCase() + name.slice(1)] || "";
  };

  var socket = null;
  var attempts = 0;
  var closedForGood = false;
  var pending = {}; // client_id -> {element, frame}: shown at once, replaced by the stored message
  var typingTimer = null;
  var lastTypingSent = 0;
  var lastReadSent = 0;
  var olderUrl = null;
  var olderStarted = false;

  // --- rendering ---------------------------------------------------------------------------------

  var URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
  var TRAILING = /[.,;:!?)\]]+$/;

  function appendLinkified(parent, text) {
    var last = 0;
    text.replace(URL_PATTERN, function (match, offset) {
      var url = match.replace(TRAILING, "");
      if (offset > last) {
        parent.appendChild(document.createTextNode(text.slice(last, offset)));
      }
      var parsed = null;
      try {
        parsed = new URL(url);
      } catch (error) {
        parsed = null;
      }
      if (parsed && (parsed.protocol === "http:" || parsed.protocol === "https:")) {
        var anchor = document.createElement("a");
        anchor.href = parsed.href;
        anchor.rel = "nofollow noopener noreferrer";
        anchor.target = "_blank";
        anchor.textContent = url;
        parent.appendChild(anchor);
      } else {
        parent.appendChild(document.createTextNode(url));
      }
      last = offset + url.length;
      return match;
    });
    if (last < text.length) {
      parent.appendChild(document.createTextNode(text.slice(last)));
    }
  }

  function formatTime(iso) {
    var date = new Date(iso);
    return isNaN(date) ? "" : date.toLocaleString([], {dateStyle: "short", timeStyle: "short"});
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  function render(message) {
    var mine = message.sender.id === userId;
    var item = element("li", "chat-message" + (mine ? " chat-message--mine" : ""));
    item.dataset.id = String(message.id);
    item.dataset.sender = String(message.sender.id);
    if (message.deleted && !message.body) {
      item.appendChild(element("p", "chat-message__body chat-message__body--deleted", label("deleted")));
    } else if (message.body) {
      var body = element("p", "chat-message__body");
      appendLinkified(body, message.body);
      item.appendChild(body);
    }
    if (message.attachment) {
      var link = element("a", "chat-message__image");
      link.href = message.attachment;
      link.target = "_blank";
      link.rel = "noopener";
      var image = element("img");
      image.src = message.attachment;
      image.alt = label("image");
      image.loading = "lazy";
      link.appendChild(image);
      item.appendChild(link);
    }
    var meta = element("p", "chat-message__meta");
    meta.appendChild(element("span", "chat-message__sender", mine ? label("you") : message.sender.name));
    var time = element("time", null, formatTime(message.created_at));
    time.dateTime = message.created_at;
    meta.appendChild(time);
    var state = element("span", "chat-message__status");
    state.dataset.status = "";
    meta.appendChild(state);
    item.appendChild(meta);
    return item;
  }

  function renderPending(body, clientId) {
    var item = render({id: 0, sender: {id: userId, name: ""}, body: body, created_at: new Date().toISOString(),
                       attachment: null});
    delete item.dataset.id;
    item.dataset.clientId = clientId;
    item.classList.add("chat-message--pending");
    item.querySelector("[data-status]").textContent = label("sending");
    return item;
  }

  function ids() {
    return Array.prototype.map.call(list.querySelectorAll("li[data-id]"), function (li) {
      return Number(li.dataset.id);
    });
  }

  function lastId() {
    return ids().reduce(function (a, b) { return Math.max(a, b); }, 0);
  }

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function insert(message) {
    if (list.querySelector('li[data-id="' + message.id + '"]')) {
      return false;
    }
    var item = render(message);
    var stick = nearBottom() || message.sender.id === userId;
    var waiting = message.client_id && pending[message.client_id];
    if (waiting) {
      waiting.element.remove();
      delete pending[message.client_id];
    }
    // In id order: a live message can overtake a replayed one.
    var after = null;
    var items = list.querySelectorAll("li[data-id]");
    for (var i = items.length - 1; i >= 0; i -= 1) {
      if (Number(items[i].dataset.id) < message.id) {
        after = items[i];
        break;
      }
    }
    if (after) {
      after.after(item);
    } else if (items.length) {
      list.insertBefore(item, items[0]);
    } else {
      list.prepend(item);
    }
    // Messages still sending stay last.
    Object.keys(pending).forEach(function (key) {
      list.appendChild(pending[key].element);
    });
    if (stick) {
      log.scrollTop = log.scrollHeight;
    }
    return true;
  }

  function updateSeen() {
    var seen = null;
    list.querySelectorAll("li[data-id]").forEach(function (li) {
      var state = li.querySelector("[data-status]");
      if (Number(li.dataset.sender) === userId && state) {
        state.textContent = "";
        if (Number(li.dataset.id) <= otherRead) {
          seen = state;
        }
      }
    });
    if (seen) {
      seen.textContent = label("seen");
    }
  }

  // --- the socket ----------------------------------------------------------------------------------

  function setStatus(text, state) {
    status.textContent = text;
    status.dataset.state = state;
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function markRead() {
    if (document.visibilityState !== "visible") {
      return;
    }
    var newest = 0;
    list.querySelectorAll("li[data-id]").forEach(function (li) {
      if (Number(li.dataset.sender) !== userId) {
        newest = Math.max(newest, Number(li.dataset.id));
      }
    });
    if (newest > lastReadSent && send({type: "read", message_id: newest})) {
      lastReadSent = newest;
    }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws/chat/" + conversationId + "/");
    setStatus(label("connecting"), "connecting");

    socket.addEventListener("open", function () {
      attempts = 0;
      setStatus(label("connected"), "connected");
      send({type: "resume", after_id: lastId()});
      // What was typed while offline goes now; the client_id keeps a repeat from being stored twice.
      Object.keys(pending).forEach(function (key) {
        send(pending[key].frame);
      });
    });

    socket.addEventListener("message", function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (frame.type === "message") {
        insert(frame.message);
        if (frame.message.sender.id !== userId) {
          typing.hidden = true;
          markRead();
        }
        updateSeen();
      } else if (frame.type === "typing" && frame.user_id === otherId) {
        typing.hidden = false;
        window.clearTimeout(typingTimer);
        typingTimer = window.setTimeout(function () { typing.hidden = true; }, 4000);
      } else if (frame.type === "read" && frame.user_id === otherId) {
        otherRead = Math.max(otherRead, frame.message_id);
        updateSeen();
      } else if (frame.type === "presence" && frame.user_id === otherId) {
        presence.textContent = frame.online ? label("online") : label("offline");
        presence.dataset.online = frame.online ? "true" : "false";
      } else if (frame.type === "error") {
        showError(frame.detail);
        if (frame.client_id && pending[frame.client_id]) {
          var failed = pending[frame.client_id].element;
          failed.classList.add("chat-message--failed");
          failed.querySelector("[data-status]").textContent = label("failed");
          delete pending[frame.client_id];
        }
      }
    });

    socket.addEventListener("close", function (event) {
      socket = null;
      if (event.code === 4401 || event.code === 4403) {
        closedForGood = true;
        setStatus(label("closed"), "closed");
        return;
      }
      if (closedForGood) {
        return;
      }
      // Exponential backoff with jitter, at most 30 s.
      var delay = Math.min(30000, 500 * Math.pow(2, attempts)) * (0.75 + Math.random() / 2);
      attempts += 1;
      setStatus(label("reconnecting").replace("%(s)s", String(Math.max(1, Math.round(delay / 1000)))),
                "reconnecting");
      window.setTimeout(connect, delay);
    });
  }

  // --- composing -----------------------------------------------------------------------------------

  function newClientId() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    return String(Date.now()) + "-" + String(Math.random()).slice(2);
  }

  function showError(text) {
    if (!errorBox) {
      return;
    }
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function csrfToken() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function upload(body, file) {
    var data = new FormData();
    data.append("body", body);
    data.append("client_id", newClientId());
    data.append("attachment", file);
    return fetch(messagesApi, {method: "POST", body: data, credentials: "same-origin",
                               headers: {"X-CSRFToken": csrfToken(), "Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (json) {
          if (!response.ok) {
            throw new Error(json.detail || response.statusText);
          }
          insert(json);
          updateSeen();
        });
      });
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      showError("");
      var body = bodyInput.value;
      var file = fileInput && fileInput.files.length ? fileInput.files[0] : null;
      if (!body.trim() && !file) {
        return;
      }
      if (file) {
        upload(body, file).then(function () {
          bodyInput.value = "";
          fileInput.value = "";
        }, function (error) {
          showError(error.message);
        });
        return;
      }
      var clientId = newClientId();
      var frame = {type: "message", body: body, client_id: clientId};
      var item = renderPending(body, clientId);
      pending[clientId] = {element: item, frame: frame};
      list.appendChild(item);
      log.scrollTop = log.scrollHeight;
      bodyInput.value = "";
      send(frame); // or on reconnect
    });

    bodyInput.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });

    bodyInput.addEventListener("input", function () {
      var now = Date.now();
      if (now - lastTypingSent > 2000 && bodyInput.value) {
        lastTypingSent = now;
        send({type: "typing"});
      }
    });
  }

  // --- earlier messages ------------------------------------------------------------------------------

  function loadOlder() {
    var url = olderUrl || messagesApi;
    olderButton.disabled = true;
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) {
          throw new Error(response.statusText);
        }
        return response.json();
      })
      .then(function (page) {
        var first = list.querySelector("li[data-id]");
        var height = log.scrollHeight;
        var added = 0;
        page.results.forEach(function (message) {
          if (list.querySelector('li[data-id="' + message.id + '"]')) {
            return;
          }
          var item = render(message);
          if (first && Number(first.dataset.id) > message.id) {
            list.insertBefore(item, first);
          } else {
            insert(message);
          }
          added += 1;
        });
        log.scrollTop += log.scrollHeight - height;
        olderUrl = page.previous;
        olderButton.hidden = !olderUrl;
        olderButton.disabled = false;
        updateSeen();
        // The first request returns the page already shown: go on to the older one.
        if (!added && !olderStarted && olderUrl) {
          olderStarted = true;
          loadOlder();
        }
        olderStarted = true;
      })
      .catch(function (error) {
        olderButton.disabled = false;
        showError(error.message);
      });
  }

  if (olderButton) {
    olderButton.addEventListener("click", loadOlder);
  }

  document.addEventListener("visibilitychange", markRead);
  log.scrollTop = log.scrollHeight;
  updateSeen();
  connect();
})();
