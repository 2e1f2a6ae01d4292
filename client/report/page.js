/*
 * The report page's script (plain browser JS, inlined by client/report/html.ts
 * after uPlot). It draws the charts from the JSON in #report-data, shades the
 * termination + switchover pause, and after each chart is drawn it counts the
 * canvas pixels that are not background and writes the count to the chart's
 * data-drawn-pixels attribute; body[data-charts-ready] gives how many charts
 * were drawn; the pause label's box and the canvas width go to the chart's
 * data-pause-label attribute ("left,right,width" in canvas pixels). The tests
 * read these attributes in Chromium.
 */
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var expected = document.querySelectorAll('.chart').length;
  var drawn = 0;

  function countInk(u) {
    var c = u.ctx.canvas;
    var px = u.ctx.getImageData(0, 0, c.width, c.height).data;
    var n = 0;
    // The canvas background is transparent: any alpha is ink (axes, grid, lines, shading).
    for (var i = 3; i < px.length; i += 4) if (px[i] !== 0) n++;
    return n;
  }

  function onDrawn(u) {
    var el = u.root.parentNode;
    var first = !el.hasAttribute('data-drawn-pixels');
    el.setAttribute('data-drawn-pixels', String(countInk(u)));
    if (first) {
      drawn++;
      if (drawn === expected) document.body.setAttribute('data-charts-ready', String(drawn));
    }
  }

  /**
   * Shades [pause.start, pause.end] under the series, with a minimum visible
   * width, and names it: right of the band when the label fits in the plot,
   * else left of it, so the label never runs off the chart.
   */
  function pauseBand(pause) {
    return function (u) {
      if (!pause) return;
      var x0 = u.valToPos(pause.start, 'x', true);
      var x1 = u.valToPos(pause.end, 'x', true);
      var w = Math.max(x1 - x0, 4 * devicePixelRatio);
      var ctx = u.ctx;
      ctx.save();
      ctx.fillStyle = 'rgba(216, 59, 59, 0.18)';
      ctx.fillRect(x0, u.bbox.top, w, u.bbox.height);
      ctx.fillStyle = 'rgba(216, 59, 59, 0.9)';
      ctx.font = (11 * devicePixelRatio) + 'px system-ui, sans-serif';
      var text = 'pause';
      var tw = ctx.measureText(text).width;
      var gap = 3 * devicePixelRatio;
      var plotRight = u.bbox.left + u.bbox.width;
      var lx = x0 + w + gap + tw <= plotRight ? x0 + w + gap : Math.max(u.bbox.left, x0 - gap - tw);
      ctx.fillText(text, lx, u.bbox.top + 12 * devicePixelRatio);
      ctx.restore();
      u.root.parentNode.setAttribute('data-pause-label', [Math.round(lx), Math.round(lx + tw), ctx.canvas.width].join(','));
    };
  }

  function chart(id, series, columns, opts) {
    var el = document.getElementById(id);
    if (!el) return;
    var width = Math.max(320, el.clientWidth || 900);
    var o = {
      width: width, height: 240, series: [{}].concat(series), axes: opts.axes, scales: opts.scales || { x: { time: true } },
      legend: { live: false },
      hooks: { drawAxes: [pauseBand(opts.pause)], draw: [onDrawn] },
    };
    new uPlot(o, columns, el);
  }

  var leftAxis = function (label) { return { label: label, size: 60, stroke: '#444', grid: { stroke: '#eee' } }; };
  var ing = data.ingress;
  if (ing.x.length > 1) {
    chart('chart-throughput', [
      { label: 'requests/s', stroke: '#3b7dd8', width: 2, fill: 'rgba(59,125,216,0.08)' },
      { label: 'errors/s', stroke: '#b0413e', width: 2 },
    ], [ing.x, ing.rps, ing.errps], { pause: data.pause, axes: [{}, leftAxis('req/s')] });
    chart('chart-latency', [
      { label: 'mean ms', stroke: '#2e9e5b', width: 2 },
      { label: 'max ms', stroke: '#e07b00', width: 2 },
    ], [ing.x, ing.meanMs, ing.maxMs], { pause: data.pause, axes: [{}, leftAxis('ms')] });
  }
  var tr = data.transfer;
  if (tr.x.length > 1) {
    chart('chart-transfer', [
      { label: 'copied %', stroke: '#7a4fd0', width: 2, scale: 'pct' },
      { label: 'lag ms', stroke: '#d9a400', width: 2, scale: 'ms' },
    ], [tr.x, tr.percent, tr.lagMs], {
      scales: { x: { time: true }, pct: { range: [0, 100] }, ms: {} },
      axes: [{}, { scale: 'pct', label: '%', size: 50, grid: { stroke: '#eee' } }, { scale: 'ms', label: 'lag ms', side: 1, size: 60, grid: { show: false } }],
    });
  }
  if (expected === 0) document.body.setAttribute('data-charts-ready', '0');
})();
