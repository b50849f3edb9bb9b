// A home's page: the photo gallery, the map (Leaflet, from the site's own static files) and the
// mortgage calculator. Everything the scripts need comes from data- attributes: the CSP allows
// no inline script.
(function () {
  "use strict";

  // --- Gallery: thumbnails are links to the large photos; with this script they show the
  // photo in place, and previous/next buttons and the arrow keys move through them.
  function initGallery(gallery) {
    var image = gallery.querySelector("[data-gallery-image]");
    var caption = gallery.querySelector("[data-gallery-caption]");
    var counter = gallery.querySelector("[data-gallery-counter]");
    var previous = gallery.querySelector("[data-gallery-prev]");
    var next = gallery.querySelector("[data-gallery-next]");
    var thumbs = Array.prototype.slice.call(gallery.querySelectorAll("[data-gallery-thumb]"));
    if (!image || thumbs.length < 2) {
      return;
    }
    var current = 0;

    function show(index) {
      current = (index + thumbs.length) % thumbs.length;
      var thumb = thumbs[current];
      var width = parseInt(thumb.dataset.width, 10);
      var height = parseInt(thumb.dataset.height, 10);
      if (width > 0 && height > 0) {
        image.width = width;
        image.height = height;
      }
      image.src = thumb.getAttribute("href");
      image.alt = thumb.dataset.alt || "";
      if (caption) {
        caption.textContent = thumb.dataset.caption || "";
      }
      if (counter) {
        counter.textContent = current + 1 + " / " + thumbs.length;
      }
      thumbs.forEach(function (other, otherIndex) {
        if (otherIndex === current) {
          other.setAttribute("aria-current", "true");
        } else {
          other.removeAttribute("aria-current");
        }
      });
    }

    thumbs.forEach(function (thumb, index) {
      thumb.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) {
          return; // opening the photo in a new tab stays possible
        }
        event.preventDefault();
        show(index);
      });
    });
    [previous, next].forEach(function (button, step) {
      if (!button) {
        return;
      }
      button.hidden = false;
      button.addEventListener("click", function () {
        show(current + (step === 0 ? -1 : 1));
      });
    });
    gallery.addEventListener("keydown", function (event) {
      if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
        event.preventDefault();
        show(current + (event.key === "ArrowLeft" ? -1 : 1));
      }
    });
  }

  // --- Map ------------------------------------------------------------------------------------
  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (character) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[character];
    });
  }

  function initMap(element) {
    if (typeof window.L === "undefined") {
      return;
    }
    var L = window.L;
    var latitude = parseFloat(element.dataset.lat);
    var longitude = parseFloat(element.dataset.lng);
    if (!isFinite(latitude) || !isFinite(longitude)) {
      return;
    }
    // Leaflet guesses where its marker images are from its stylesheet's URL, which fails with
    // hashed static files: the page names each image and the guess is switched off.
    L.Icon.Default.imagePath = "";
    L.Icon.Default.mergeOptions({
      iconUrl: element.dataset.iconUrl,
      iconRetinaUrl: element.dataset.iconRetinaUrl,
      shadowUrl: element.dataset.shadowUrl,
    });
    var map = L.map(element, { scrollWheelZoom: false }).setView([latitude, longitude], 15);
    L.tileLayer(element.dataset.tileUrl, {
      maxZoom: 19,
      attribution: escapeHtml(element.dataset.tileAttribution || ""),
    }).addTo(map);
    L.marker([latitude, longitude], {
      title: element.dataset.markerTitle || "",
      alt: element.dataset.markerTitle || "",
      keyboard: false,
    }).addTo(map);
  }

  // --- Mortgage calculator: the standard amortised payment, plus tax and insurance by month.
  function monthlyPayment(loan, annualRatePercent, years) {
    var months = Math.round(years * 12);
    var rate = annualRatePercent / 100 / 12;
    if (rate === 0) {
      return loan / months;
    }
    return (loan * rate) / (1 - Math.pow(1 + rate, -months));
  }

  function initCalculator(form) {
    var currency = form.dataset.currency || "";
    var formatter = new Intl.NumberFormat(document.documentElement.lang || undefined, {
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    });
    var monthly = form.querySelector("[data-mortgage-monthly]");
    var loanOutput = form.querySelector("[data-mortgage-loan]");
    var principalOutput = form.querySelector("[data-mortgage-principal]");
    var extrasOutput = form.querySelector("[data-mortgage-extras]");
    var invalid = form.querySelector("[data-mortgage-invalid]");

    function money(amount) {
      return formatter.format(amount) + (currency ? " " + currency : "");
    }

    // An empty optional field counts as 0; anything else must be a number.
    function read(name, emptyValue) {
      var input = form.elements[name];
      if (!input || input.value.trim() === "") {
        return emptyValue;
      }
      var value = input.valueAsNumber;
      return isFinite(value) ? value : NaN;
    }

    function update() {
      var price = read("price", NaN);
      var down = read("down_payment", 0);
      var rate = read("rate", 0);
      var term = read("term", NaN);
      var tax = read("tax", 0);
      var insurance = read("insurance", 0);
      var valid =
        price >= 0 && down >= 0 && down <= price && rate >= 0 && rate <= 100 && term >= 1 && tax >= 0 && insurance >= 0;
      if (invalid) {
        invalid.hidden = valid;
      }
      if (!valid) {
        [monthly, loanOutput, principalOutput, extrasOutput].forEach(function (output) {
          if (output) {
            output.textContent = "—";
          }
        });
        return;
      }
      var loan = price - down;
      var principal = monthlyPayment(loan, rate, term);
      var extras = tax / 12 + insurance / 12;
      monthly.textContent = money(principal + extras);
      if (loanOutput) {
        loanOutput.textContent = money(loan);
      }
      if (principalOutput) {
        principalOutput.textContent = money(principal);
      }
      if (extrasOutput) {
        extrasOutput.textContent = money(extras);
      }
    }

    form.addEventListener("input", update);
    form.addEventListener("submit", function (event) {
      event.preventDefault(); // Enter in a field recomputes; there is nothing to send
      update();
    });
    update();
  }

  function init() {
    document.querySelectorAll("[data-gallery]").forEach(initGallery);
    document.querySelectorAll("[data-listing-map]").forEach(initMap);
    document.querySelectorAll("[data-mortgage-calculator]").forEach(initCalculator);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
