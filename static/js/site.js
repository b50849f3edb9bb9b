// Site-wide behaviour, loaded on every page (no inline scripts: the CSP forbids them).
// Disclosure menus (<details data-menu>) close on Escape, on a click outside and when
// another menu opens, returning focus to their toggle on Escape.
(function () {
  "use strict";

  function openMenus() {
    return document.querySelectorAll("details[data-menu][open]");
  }

  document.addEventListener("click", function (event) {
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) {
        menu.removeAttribute("open");
      }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    openMenus().forEach(function (menu) {
      menu.removeAttribute("open");
      var toggle = menu.querySelector("summary");
      if (toggle && menu.contains(document.activeElement)) {
        toggle.focus();
      }
    });
  });

  document.addEventListener(
    "toggle",
    function (event) {
      var opened = event.target;
      if (!(opened instanceof HTMLDetailsElement) || !opened.open || !opened.hasAttribute("data-menu")) {
        return;
      }
      openMenus().forEach(function (menu) {
        if (menu !== opened) {
          menu.removeAttribute("open");
        }
      });
    },
    true
  );
})();
