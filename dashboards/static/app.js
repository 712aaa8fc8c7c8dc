// mixline dashboard: draws every <script type="application/json" class="chart-spec"> with plotly.js.
// Errors are also kept in #console-errors, so a headless browser test can read them from the DOM.
(function () {
  "use strict";
  var errors = [];
  function keep(msg) {
    errors.push(String(msg));
    var el = document.getElementById("console-errors");
    if (el) { el.textContent = errors.join("\n"); }
  }
  window.addEventListener("error", function (e) { keep("error: " + e.message); });
  window.addEventListener("unhandledrejection", function (e) { keep("rejection: " + e.reason); });
  document.addEventListener("securitypolicyviolation", function (e) { keep("csp: " + e.violatedDirective + " " + e.blockedURI); });
  var original = console.error;
  console.error = function () { keep(Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); };

  function draw() {
    var specs = document.querySelectorAll("script.chart-spec");
    var drawn = 0;
    specs.forEach(function (node) {
      var target = document.getElementById(node.getAttribute("data-target"));
      if (!target) { keep("no chart target " + node.getAttribute("data-target")); return; }
      try {
        var spec = JSON.parse(node.textContent);
        window.Plotly.newPlot(target, spec.data, spec.layout, {displaylogo: false, displayModeBar: false, responsive: true});
        drawn += 1;
      } catch (err) { keep("chart " + target.id + ": " + err); }
    });
    document.body.setAttribute("data-charts-drawn", String(drawn));
    document.body.setAttribute("data-errors", String(errors.length));
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
