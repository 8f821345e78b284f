// Trend charts of the record page (ADR 0026): each .chart element carries its series in data-series
// (JSON: label, unit, t = seconds since the epoch, v = values, low/high = the reference range). The
// table next to it holds the same values, so the page is complete without this script.
"use strict";
(function () {
  function draw(el) {
    var s = JSON.parse(el.getAttribute("data-series"));
    var width = Math.max(240, Math.min(el.clientWidth || 320, 640));
    var series = [{}, { label: s.label, stroke: "#0b5394", width: 2, points: { show: true, size: 6 } }];
    var data = [s.t, s.v];
    [["low", s.low], ["high", s.high]].forEach(function (bound) {
      if (bound[1] !== null && bound[1] !== undefined) {
        series.push({ label: bound[0], stroke: "#8a1c1c", dash: [6, 4], width: 1, points: { show: false } });
        data.push(s.t.map(function () { return bound[1]; }));
      }
    });
    new uPlot({ width: width, height: 180, series: series, legend: { show: false },
                axes: [{}, { label: s.unit || "" }] }, data, el);
  }
  function start() {
    if (typeof uPlot === "undefined") return;  // the tables stay
    Array.prototype.forEach.call(document.querySelectorAll(".chart[data-series]"), draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
