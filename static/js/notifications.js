// The unread badge in the header, kept current over /ws/notifications/ (signed-in pages only);
// on /notifications/ new notifications are added to the top of the list as they arrive.
// Text is only ever set with textContent: nothing received is parsed as HTML.
(function () {
  "use strict";

  var badges = document.querySelectorAll("[data-unread-count]");
  if (!badges.length || !("WebSocket" in window)) {
    return;
  }
  var retryDelay = 1000;
  var pingTimer = null;

  function setUnread(count) {
    badges.forEach(function (badge) {
      // The first text node is the number; the visually hidden label after it stays.
      badge.firstChild.nodeValue = String(count);
      badge.hidden = !count;
    });
    var summary = document.querySelector("[data-unread-summary]");
    if (summary) {
      summary.textContent = summary.textContent.replace(/^\s*\d+/, String(count));
    }
    var readAll = document.querySelector("[data-read-all]");
    if (readAll) {
      readAll.disabled = !count;
    }
  }

  function addToList(notification) {
    var list = document.querySelector("[data-notification-list]");
    if (!list || list.querySelector('[data-notification-id="' + Number(notification.id) + '"]')) {
      return;
    }
    var item = document.createElement("li");
    item.className = "notification notification--unread";
    item.id = "notification-" + Number(notification.id);
    item.setAttribute("data-notification-id", String(Number(notification.id)));
    var text = document.createElement("div");
    text.className = "notification__text";
    var title = document.createElement("p");
    title.className = "notification__title";
    var url = typeof notification.url === "string" && notification.url.charAt(0) === "/" &&
      notification.url.charAt(1) !== "/" ? notification.url : "";
    if (url) {
      var link = document.createElement("a");
      link.href = url;
      link.textContent = notification.title;
      title.appendChild(link);
    } else {
      title.textContent = notification.title;
    }
    text.appendChild(title);
    if (notification.body) {
      var body = document.createElement("p");
      body.className = "notification__body";
      body.textContent = notification.body;
      text.appendChild(body);
    }
    item.appendChild(text);
    list.insertBefore(item, list.firstChild);
    list.hidden = false;
    var empty = document.querySelector("[data-notification-empty]");
    if (empty) {
      empty.hidden = true;
    }
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/notifications/");
    socket.addEventListener("open", function () {
      retryDelay = 1000;
      document.documentElement.setAttribute("data-notifications-live", "");
      pingTimer = window.setInterval(function () {
        if (socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify({ type: "ping" }));
        }
      }, 50000);
    });
    socket.addEventListener("message", function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (frame.type === "unread" && typeof frame.count === "number") {
        setUnread(frame.count);
      } else if (frame.type === "notification" && frame.notification) {
        addToList(frame.notification);
      }
    });
    socket.addEventListener("close", function (event) {
      window.clearInterval(pingTimer);
      document.documentElement.removeAttribute("data-notifications-live");
      if (event.code === 4401) {
        return; // signed out: nothing to follow
      }
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }

  connect();
})();
