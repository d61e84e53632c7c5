// The operator's overview: draws its charts with uPlot from the page's JSON data block
// (#van-hanh-data). The same figures are in the page's tables; without this script
// (or without canvas) the page still says everything.
(function () {
  "use strict";
  // The same colours as operator.css's .swatch-N, in its order.
  var COLOURS = ["#0b57a4", "#9b1c1c", "#1e6b37", "#8a5a00", "#6a3d9a", "#4a5560", "#c2410c"];
  var HEIGHT = 240;

  function dataOf() {
    var block = document.getElementById("van-hanh-data");
    if (!block) { return null; }
    try { return JSON.parse(block.textContent); } catch (e) { return null; }
  }

  function seriesOf(name, data) {
    if (name === "requests") {
      return data.requests.map(function (s, i) {
        return { label: s.label, values: s.values, colour: COLOURS[i % COLOURS.length] };
      });
    }
    if (name === "served") {
      return [
        { label: "fieldsServed", values: data.fieldsServed, colour: COLOURS[0] },
        { label: "papersAvoided", values: data.papersAvoided, colour: COLOURS[2] }
      ];
    }
    if (name === "refused") {
      return [
        { label: "refused", values: data.refused, colour: COLOURS[1] },
        { label: "consents", values: data.consents, colour: COLOURS[3] }
      ];
    }
    return [];
  }

  function shortDay(day) {
    // 2026-03-01 -> 01/03
    return day.slice(8, 10) + "/" + day.slice(5, 7);
  }

  function draw(element, data) {
    var series = seriesOf(element.getAttribute("data-chart"), data);
    var days = data.days;
    var xs = days.map(function (_d, i) { return i; });
    var options = {
      width: Math.max(element.clientWidth, 280),
      height: HEIGHT,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false }, y: { range: function (_u, _min, max) { return [0, Math.max(1, max)]; } } },
      axes: [
        {
          stroke: "#4a5560",
          grid: { stroke: "#e5e9ee" },
          space: 48,
          incrs: [1, 2, 7, 14, 30],
          values: function (_u, splits) {
            return splits.map(function (i) { return days[i] === undefined ? "" : shortDay(days[i]); });
          }
        },
        // Counts: whole numbers only on the y axis.
        { stroke: "#4a5560", grid: { stroke: "#e5e9ee" }, size: 56,
          incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
            100000, 200000, 500000, 1000000, 10000000, 100000000] }
      ],
      series: [{}].concat(series.map(function (s) {
        return { label: s.label, stroke: s.colour, width: 2, points: { show: true, size: 5, fill: s.colour } };
      }))
    };
    element.textContent = "";
    var plot = new uPlot(options, [xs].concat(series.map(function (s) { return s.values; })), element);
    element.setAttribute("data-drawn", "true");
    return plot;
  }

  function start() {
    var data = dataOf();
    if (!data || typeof uPlot === "undefined") { return; }
    var plots = [];
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      plots.push({ element: element, plot: draw(element, data) });
    });
    var pending = null;
    window.addEventListener("resize", function () {
      if (pending) { window.clearTimeout(pending); }
      pending = window.setTimeout(function () {
        plots.forEach(function (p) {
          p.plot.setSize({ width: Math.max(p.element.clientWidth, 280), height: HEIGHT });
        });
      }, 150);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
