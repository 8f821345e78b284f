// Trend charts of the record page (ADR 0026): each .chart element carries its series in data-series
// (JSON: label, unit, t = seconds since the epoch, v = values, low/high = the reference range). The
// table next to it holds the same values, so the page is complete without this script.
"use strict";
(function () {
  // Month and day names in the page's language (uPlot's own are English).
  var VI = {
    MMMM: ["Tháng 1", "Tháng 2", "Tháng 3", "Tháng 4", "Tháng 5", "Tháng 6", "Tháng 7", "Tháng 8", "Tháng 9",
           "Tháng 10", "Tháng 11", "Tháng 12"],
    MMM: ["Th1", "Th2", "Th3", "Th4", "Th5", "Th6", "Th7", "Th8", "Th9", "Th10", "Th11", "Th12"],
    WWWW: ["Chủ nhật", "Thứ hai", "Thứ ba", "Thứ tư", "Thứ năm", "Thứ sáu", "Thứ bảy"],
    WWW: ["CN", "T2", "T3", "T4", "T5", "T6", "T7"]
  };
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
    var options = { width: width, height: 180, series: series, legend: { show: false },
                    axes: [{}, { label: s.unit || "" }] };
    if (document.documentElement.lang === "vi") {
      options.fmtDate = function (tpl) { return uPlot.fmtDate(tpl, VI); };
    }
    new uPlot(options, data, el);
  }
  function start() {
    if (typeof uPlot === "undefined") return;  // the tables stay
    Array.prototype.forEach.call(document.querySelectorAll(".chart[data-series]"), draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
