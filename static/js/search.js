// The search page: the results on a Leaflet map (from the site's own static files) beside the
// list, kept in step with it. The page works as a plain GET form without this script; with it,
// htmx swaps the results in place (see templates/search/), and this script
//  - redraws the markers from the JSON block of each swapped result (the same homes as the list),
//  - searches the visible area when the map is moved (the `bbox` field), or on request,
//  - draws an area to search (the `polygon` field): click the corners, double-click or Finish,
//  - shows the map again as it was when the back button restores an earlier search.
// No inline script or style (the CSP forbids them): everything comes from data- attributes.
(function () {
  "use strict";

  var MOVE_DELAY = 400; // ms after the map stops before its area is searched
  var DECIMALS = 5; // ~1 m: enough for an area, short in the address bar
  var FIT_MAX_ZOOM = 15;
  var DOUBLE_CLICK_PIXELS = 6; // a second click this close to the last corner is a double-click's

  var L;
  var map;
  var markerLayer;
  var areaLayer;
  var markersById = {};
  var fitting = false; // a move made by this script, not by the person
  var autoPanning = false; // a popup moving the map to show itself whole
  var moveTimer = null;
  var drawing = null; // {points, line, guide, vertices} while an area is being drawn
  var controls = {};

  // --- the form ------------------------------------------------------------------------------

  function searchForm() {
    return document.getElementById("search-form");
  }

  function field(name) {
    var form = searchForm();
    return form ? form.elements.namedItem(name) : null;
  }

  function setField(name, value) {
    var input = field(name);
    if (input) {
      input.value = value;
    }
  }

  function submitSearch() {
    var form = searchForm();
    if (form && window.htmx) {
      window.htmx.trigger(form, "submit");
    } else if (form) {
      form.submit();
    }
  }

  // A new area replaces the others (box, polygon, circle); a distance sort needs the circle's point.
  function clearArea() {
    ["bbox", "polygon", "lat", "lng", "radius_km"].forEach(function (name) {
      setField(name, "");
    });
    var sort = field("sort");
    if (sort && sort.value === "distance") {
      sort.value = "";
    }
  }

  function round(value) {
    return Number(value.toFixed(DECIMALS));
  }

  function clamp(value, low, high) {
    return Math.min(high, Math.max(low, value));
  }

  // --- reading the page's state --------------------------------------------------------------

  function readMarkers() {
    var script = document.getElementById("search-markers");
    if (!script) {
      return [];
    }
    try {
      return JSON.parse(script.textContent) || [];
    } catch (error) {
      return [];
    }
  }

  function numbers(text) {
    return text.split(",").map(Number);
  }

  function readArea() {
    var area = {};
    var bbox = (field("bbox") || {}).value || "";
    var polygon = (field("polygon") || {}).value || "";
    var lat = parseFloat((field("lat") || {}).value);
    var lng = parseFloat((field("lng") || {}).value);
    var radius = parseFloat((field("radius_km") || {}).value);
    if (bbox) {
      var box = numbers(bbox);
      if (box.length === 4 && box.every(isFinite)) {
        area.bbox = L.latLngBounds([box[1], box[0]], [box[3], box[2]]);
      }
    }
    if (polygon) {
      var ring = polygon
        .split(";")
        .filter(Boolean)
        .map(function (pair) {
          var point = numbers(pair);
          return L.latLng(point[1], point[0]);
        });
      if (ring.length >= 3) {
        area.polygon = ring;
      }
    }
    if (isFinite(lat) && isFinite(lng) && isFinite(radius)) {
      area.circle = { center: L.latLng(lat, lng), radius: radius * 1000 };
    }
    return area;
  }

  function hasArea(area) {
    return Boolean(area.bbox || area.polygon || area.circle);
  }

  // --- drawing the results -------------------------------------------------------------------

  var compactPrice = new Intl.NumberFormat(document.documentElement.lang || undefined, {
    notation: "compact",
    maximumFractionDigits: 1,
  });

  function popupContent(item) {
    var box = document.createElement("div");
    box.className = "search-popup";
    var price = document.createElement("p");
    price.className = "search-popup__price";
    price.textContent = item.price;
    var link = document.createElement("a");
    link.href = item.url;
    link.textContent = item.title;
    box.appendChild(price);
    box.appendChild(link);
    return box;
  }

  function markerIcon(item) {
    var label = document.createElement("span");
    label.className = "search-marker__label";
    label.textContent = isFinite(item.amount) ? compactPrice.format(item.amount) : item.price;
    return L.divIcon({ className: "search-marker", html: label, iconSize: null, iconAnchor: [0, 0] });
  }

  function drawMarkers(items) {
    markerLayer.clearLayers();
    markersById = {};
    items.forEach(function (item) {
      if (!isFinite(item.lat) || !isFinite(item.lng)) {
        return;
      }
      var marker = L.marker([item.lat, item.lng], {
        icon: markerIcon(item),
        title: item.title + " · " + item.price,
        alt: item.title,
        riseOnHover: true,
      });
      marker.bindPopup(popupContent(item));
      markerLayer.addLayer(marker);
      var element = marker.getElement();
      if (element) {
        element.setAttribute("data-listing-id", String(item.id));
      }
      markersById[String(item.id)] = marker;
    });
  }

  function drawArea(area) {
    areaLayer.clearLayers();
    if (area.polygon) {
      L.polygon(area.polygon, { className: "search-map__area", interactive: false }).addTo(areaLayer);
    }
    if (area.circle) {
      L.circle(area.circle.center, {
        radius: area.circle.radius,
        className: "search-map__area",
        interactive: false,
      }).addTo(areaLayer);
    }
    if (controls.clear) {
      controls.clear.hidden = !area.polygon || Boolean(drawing);
    }
  }

  // Moves made here set `fitting`: without animation Leaflet ends the move (moveend) before
  // returning, so the handler can tell them from the person's.
  function withoutSearch(move) {
    fitting = true;
    try {
      move();
    } finally {
      fitting = false;
    }
  }

  function fitTo(area, items) {
    var bounds = null;
    if (area.bbox) {
      bounds = area.bbox;
    } else if (area.polygon) {
      bounds = L.latLngBounds(area.polygon);
    } else if (area.circle) {
      bounds = area.circle.center.toBounds(area.circle.radius * 2);
    } else if (items.length) {
      bounds = L.latLngBounds(
        items.map(function (item) {
          return [item.lat, item.lng];
        })
      );
    }
    if (!bounds) {
      return false;
    }
    withoutSearch(function () {
      if (area.bbox) {
        map.fitBounds(bounds, { animate: false });
      } else {
        map.fitBounds(bounds, { animate: false, padding: [40, 40], maxZoom: FIT_MAX_ZOOM });
      }
    });
    return true;
  }

  // After a swap: markers and area from the page; the view moves only when the search has no
  // area (the map then follows the results) or when `refit` asks (first load, back button).
  function sync(refit) {
    var items = readMarkers();
    var area = readArea();
    drawMarkers(items);
    drawArea(area);
    if (refit || !hasArea(area)) {
      fitTo(area, items);
    }
    if (controls.thisArea) {
      controls.thisArea.hidden = true;
    }
    announce();
  }

  function announce() {
    var announcer = document.querySelector("[data-search-announcer]");
    var count = document.querySelector("[data-search-count]");
    if (announcer && count) {
      announcer.textContent = count.textContent.trim();
    }
  }

  // --- searching the visible area ------------------------------------------------------------

  function visibleBox() {
    var bounds = map.getBounds();
    var west = bounds.getWest();
    var east = bounds.getEast();
    if (east - west >= 360) {
      west = -180;
      east = 180;
    }
    return [
      round(clamp(west, -180, 180)),
      round(clamp(bounds.getSouth(), -90, 90)),
      round(clamp(east, -180, 180)),
      round(clamp(bounds.getNorth(), -90, 90)),
    ];
  }

  function searchVisibleArea() {
    clearTimeout(moveTimer);
    moveTimer = null;
    var box = visibleBox();
    if (!(box[0] < box[2] && box[1] < box[3])) {
      return;
    }
    clearArea();
    setField("bbox", box.join(","));
    areaLayer.clearLayers();
    if (controls.clear) {
      controls.clear.hidden = true;
    }
    if (controls.thisArea) {
      controls.thisArea.hidden = true;
    }
    submitSearch();
  }

  function onMoveEnd() {
    if (autoPanning) {
      autoPanning = false;
      return;
    }
    if (fitting || drawing) {
      return;
    }
    clearTimeout(moveTimer);
    if (controls.follow && !controls.follow.checked) {
      if (controls.thisArea) {
        controls.thisArea.hidden = false;
      }
      return;
    }
    moveTimer = setTimeout(searchVisibleArea, MOVE_DELAY);
  }

  // --- drawing an area -----------------------------------------------------------------------

  function setDrawingControls(active) {
    controls.start.hidden = active;
    controls.finish.hidden = !active;
    controls.cancel.hidden = !active;
    controls.hint.hidden = !active;
    controls.finish.disabled = true;
    map.getContainer().classList.toggle("search-map--drawing", active);
  }

  function startDrawing() {
    if (drawing) {
      return;
    }
    clearTimeout(moveTimer);
    drawing = {
      points: [],
      line: L.polyline([], { className: "search-map__sketch", interactive: false }).addTo(map),
      guide: L.polyline([], { className: "search-map__guide", interactive: false }).addTo(map),
      vertices: L.layerGroup().addTo(map),
    };
    map.doubleClickZoom.disable();
    map.on("click", addCorner);
    map.on("dblclick", finishDrawing);
    map.on("mousemove", moveGuide);
    document.addEventListener("keydown", onDrawingKey);
    setDrawingControls(true);
    if (controls.clear) {
      controls.clear.hidden = true;
    }
  }

  function stopDrawing() {
    if (!drawing) {
      return;
    }
    map.removeLayer(drawing.line);
    map.removeLayer(drawing.guide);
    map.removeLayer(drawing.vertices);
    drawing = null;
    map.off("click", addCorner);
    map.off("dblclick", finishDrawing);
    map.off("mousemove", moveGuide);
    document.removeEventListener("keydown", onDrawingKey);
    map.doubleClickZoom.enable();
    setDrawingControls(false);
  }

  function addCorner(event) {
    var points = drawing.points;
    if (points.length) {
      var last = map.latLngToContainerPoint(points[points.length - 1]);
      if (last.distanceTo(event.containerPoint) < DOUBLE_CLICK_PIXELS) {
        return;
      }
    }
    points.push(event.latlng);
    drawing.line.setLatLngs(points);
    L.circleMarker(event.latlng, { radius: 4, className: "search-map__corner", interactive: false }).addTo(
      drawing.vertices
    );
    controls.finish.disabled = points.length < 3;
  }

  function moveGuide(event) {
    var points = drawing.points;
    if (points.length) {
      drawing.guide.setLatLngs([points[points.length - 1], event.latlng, points[0]]);
    }
  }

  function onDrawingKey(event) {
    if (event.key === "Escape") {
      cancelDrawing();
    } else if (event.key === "Enter" && drawing && drawing.points.length >= 3 && !isField(event.target)) {
      event.preventDefault();
      finishDrawing();
    }
  }

  function isField(element) {
    return Boolean(element && element.closest && element.closest("input, select, textarea"));
  }

  function finishDrawing() {
    if (!drawing || drawing.points.length < 3) {
      return;
    }
    var ring = drawing.points.map(function (point) {
      var wrapped = point.wrap();
      return round(wrapped.lng) + "," + round(wrapped.lat);
    });
    stopDrawing();
    clearArea();
    setField("polygon", ring.join(";"));
    drawArea(readArea());
    submitSearch();
  }

  function cancelDrawing() {
    stopDrawing();
    drawArea(readArea());
  }

  function clearDrawnArea() {
    setField("polygon", "");
    areaLayer.clearLayers();
    controls.clear.hidden = true;
    if (controls.follow && controls.follow.checked) {
      setField("bbox", visibleBox().join(","));
    }
    submitSearch();
  }

  // --- list and map point at each other ------------------------------------------------------

  function highlight(id, on) {
    var marker = markersById[id];
    var element = marker && marker.getElement();
    if (element) {
      element.classList.toggle("search-marker--active", on);
      if (on) {
        marker.setZIndexOffset(1000);
      } else {
        marker.setZIndexOffset(0);
      }
    }
  }

  function onListHover(event) {
    var item = event.target.closest && event.target.closest("#search-results [data-listing-id]");
    if (!item) {
      return;
    }
    var related = event.relatedTarget;
    if (related && item.contains(related)) {
      return;
    }
    highlight(item.getAttribute("data-listing-id"), event.type === "mouseover" || event.type === "focusin");
  }

  // --- set-up --------------------------------------------------------------------------------

  function initMap(element) {
    L = window.L;
    map = L.map(element, { scrollWheelZoom: true, zoomSnap: 0.5 });
    L.tileLayer(element.dataset.tileUrl, {
      maxZoom: 19,
      attribution: escapeHtml(element.dataset.tileAttribution || ""),
    }).addTo(map);
    areaLayer = L.layerGroup().addTo(map);
    markerLayer = L.layerGroup().addTo(map);
    var items = readMarkers();
    var area = readArea();
    if (!fitTo(area, items)) {
      withoutSearch(function () {
        map.setView([20, 0], 2, { animate: false });
      });
    }
    drawMarkers(items);
    drawArea(area);
    map.on("moveend", onMoveEnd);
    map.on("autopanstart", function () {
      autoPanning = true;
    });
    // Exposed for the browser tests (and the console): the Leaflet map.
    window.realioSearchMap = map;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (character) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[character];
    });
  }

  function init() {
    var element = document.querySelector("[data-search-map]");
    var panel = document.querySelector("[data-search-map-panel]");
    var layout = document.querySelector("[data-search-layout]");
    if (!element || !panel || typeof window.L === "undefined") {
      return;
    }
    panel.hidden = false;
    layout.classList.add("search-layout--with-map");
    controls = {
      follow: panel.querySelector("[data-search-follow]"),
      thisArea: panel.querySelector("[data-search-this-area]"),
      start: panel.querySelector("[data-draw-start]"),
      finish: panel.querySelector("[data-draw-finish]"),
      cancel: panel.querySelector("[data-draw-cancel]"),
      clear: panel.querySelector("[data-draw-clear]"),
      hint: panel.querySelector("[data-draw-hint]"),
    };
    initMap(element);

    controls.thisArea.addEventListener("click", searchVisibleArea);
    controls.start.addEventListener("click", startDrawing);
    controls.finish.addEventListener("click", finishDrawing);
    controls.cancel.addEventListener("click", cancelDrawing);
    controls.clear.addEventListener("click", clearDrawnArea);
    controls.follow.addEventListener("change", function () {
      if (controls.follow.checked) {
        controls.thisArea.hidden = true;
      }
    });

    // A new place typed in the keywords is searched everywhere, not in the old map area.
    document.addEventListener(
      "change",
      function (event) {
        if (event.target && event.target.name === "q" && event.target.form === searchForm()) {
          setField("bbox", "");
        }
      },
      true
    );
    // "Search everywhere" links work without JavaScript; here they clear the area in place.
    document.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("[data-search-clear-area]");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) {
        return;
      }
      event.preventDefault();
      if (drawing) {
        stopDrawing();
      }
      clearArea();
      areaLayer.clearLayers();
      submitSearch();
    });

    ["mouseover", "mouseout", "focusin", "focusout"].forEach(function (type) {
      layout.addEventListener(type, onListHover);
    });

    document.body.addEventListener("htmx:beforeSwap", function (event) {
      // A refused query (400) carries its message and the filters: show it like a result.
      var target = event.detail.target;
      if (event.detail.xhr.status === 400 && target && target.id === "search-results") {
        event.detail.shouldSwap = true;
        event.detail.isError = false;
      }
    });
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.target && event.target.id === "search-results") {
        sync(false);
      }
    });
    document.body.addEventListener("htmx:historyRestore", function () {
      if (drawing) {
        stopDrawing();
      }
      clearTimeout(moveTimer);
      sync(true);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
