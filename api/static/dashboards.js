// Draw every chart of the page with the vendored Chart.js. Each <canvas data-chart="id">
// names a <script type="application/json" id="id"> holding a Chart.js config built on
// the server (api/charts.py); nothing here computes a figure.
(function () {
  "use strict";
  if (typeof Chart === "undefined") {
    return;
  }
  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family =
    'system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", sans-serif';

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source) {
      return;
    }
    var config = JSON.parse(source.textContent);
    if (config.rows) {
      // Horizontal bars: give each row room so labels stay legible on a phone.
      canvas.parentNode.style.height = Math.max(160, 70 + config.rows * 34) + "px";
    }
    delete config.rows;
    new Chart(canvas, config);
    canvas.setAttribute("data-rendered", "true");
  });
})();
