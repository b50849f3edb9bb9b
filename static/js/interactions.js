// Interest signals for recommendations (POST /api/v1/interactions/): the photo gallery opened
// on a home's page, a click on a search result, a home shared. Loaded on every page; each
// signal is sent at most once per page and per home, and a failure is ignored (a signal is
// not worth an error on the page).
(function () {
  "use strict";

  var ENDPOINT = "/api/v1/interactions/";
  var sent = {};

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function send(listingId, kind) {
    var id = parseInt(listingId, 10);
    if (!id || sent[kind + ":" + id]) {
      return;
    }
    sent[kind + ":" + id] = true;
    try {
      fetch(ENDPOINT, {
        method: "POST",
        credentials: "same-origin",
        keepalive: true,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ listing: id, kind: kind }),
      }).catch(function () {});
    } catch (error) {
      // old browsers without fetch: no signal
    }
  }

  function pageListing() {
    var holder = document.querySelector("[data-reco-listing]");
    return holder ? holder.getAttribute("data-reco-listing") : null;
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) {
      return;
    }
    // The gallery: a thumbnail or the previous/next buttons.
    if (target.closest("[data-gallery-thumb], [data-gallery-prev], [data-gallery-next]")) {
      send(pageListing(), "gallery_opened");
      return;
    }
    // A result in the search page's list.
    var result = target.closest("#search-results [data-listing-id]");
    if (result && target.closest("a")) {
      send(result.getAttribute("data-listing-id"), "search_click");
      return;
    }
    var share = target.closest("[data-share]");
    if (share) {
      var url = share.getAttribute("data-share-url") || window.location.href;
      var status = document.querySelector("[data-share-status]");
      send(pageListing(), "share");
      if (navigator.share) {
        navigator.share({ title: document.title, url: url }).catch(function () {});
      } else if (navigator.clipboard) {
        navigator.clipboard.writeText(url).then(function () {
          if (status) {
            status.hidden = false;
          }
        }).catch(function () {});
      }
    }
  });
})();
