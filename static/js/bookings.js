// Booking pickers (templates/bookings/): htmx swaps the days, times and results in place.
// A refused booking (400, 403, 409) carries its message and the fresh free times: it is shown
// like any answer, not dropped as an error. After a swap, the message or confirmation gets
// the focus so screen readers announce it. The CSP allows no inline script: this file is all.
(function () {
  "use strict";

  var SHOWN_ERRORS = [400, 403, 409];

  function pickerOf(element) {
    return element && element.closest ? element.closest("[data-booking-picker]") : null;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.hasAttribute || !target.hasAttribute("data-booking-picker")) {
      return;
    }
    if (SHOWN_ERRORS.indexOf(event.detail.xhr.status) !== -1) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var picker = pickerOf(event.detail.target);
    if (!picker) {
      return;
    }
    picker.setAttribute("aria-busy", "false");
    var focus = picker.querySelector("[data-booking-focus]");
    var trigger = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (focus) {
      focus.focus();
    } else if (trigger && trigger.classList && trigger.classList.contains("day-tab")) {
      // A day was chosen: the keyboard stays on the (new) chosen day's tab.
      var selected = picker.querySelector(".day-tab[aria-current]");
      if (selected) {
        selected.focus();
      }
    }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var picker = pickerOf(event.detail.elt);
    if (picker) {
      picker.setAttribute("aria-busy", "true");
    }
  });

  // The network failed (not a refusal): say so in the picker instead of leaving it stale.
  document.addEventListener("htmx:sendError", function (event) {
    var picker = pickerOf(event.detail.elt);
    if (!picker) {
      return;
    }
    picker.setAttribute("aria-busy", "false");
    var alert = document.createElement("div");
    alert.className = "alert alert--error";
    alert.setAttribute("role", "alert");
    alert.textContent = picker.getAttribute("data-offline-message") || "The connection failed. Try again.";
    picker.insertBefore(alert, picker.firstChild);
  });
})();
