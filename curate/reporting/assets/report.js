/* curate report: draws the page from the inline JSON; plain JS, no library, no network. */
(function () {
  'use strict';
  var DATA = JSON.parse(document.getElementById('curate-data').textContent);
  var app = document.getElementById('app');
  var tip = document.getElementById('tip');
  var PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1',
    '#ff9da7', '#9c755f', '#bab0ac', '#1f77b4', '#aec7e8', '#ffbb78', '#98df8a', '#c5b0d5',
    '#c49c94', '#f7b6d2', '#dbdb8d', '#9edae5', '#17becf'];

  function el(tag, attrs) {
    var node = document.createElement(tag);
    var a = attrs || {};
    Object.keys(a).forEach(function (k) {
      if (a[k] === null || a[k] === undefined) return;
      if (k === 'text') node.textContent = a[k];
      else if (k === 'cls') node.className = a[k];
      else node.setAttribute(k, a[k]);
    });
    for (var i = 2; i < arguments.length; i++) {
      var kid = arguments[i];
      if (kid === null || kid === undefined || kid === false) continue;
      node.appendChild(typeof kid === 'string' ? document.createTextNode(kid) : kid);
    }
    return node;
  }
  function fmt(x, digits) {
    if (x === null || x === undefined) return '—';
    if (typeof x === 'number') {
      if (Number.isInteger(x)) return x.toLocaleString('en-US');
      if (x !== 0 && Math.abs(x) < 1e-3) return x.toExponential(Math.max(0, (digits || 3) - 2));
      return x.toPrecision(digits || 3);
    }
    return String(x);
  }
  function pct(a, b) { return b ? (100 * a / b).toFixed(1) + '%' : '—'; }
  function className(m, k) {
    if (k === null || k === undefined || k < 0) return '—';
    return (m.classes && m.classes[k] !== undefined) ? m.classes[k] : String(k);
  }
  function reasonKind(r) {
    if (r.reason_kind) return r.reason_kind;
    if (r.keep === true) return 'kept';
    if (r.prune_reason) return r.prune_reason.replace(/=.*$/, '');
    return r.keep === false ? 'removed' : '';
  }
  function decode(b64, Type) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  function colourOf(k) {
    if (k < 0) return '#c8c8c8';
    if (k < PALETTE.length) return PALETTE[k];
    var h = (k * 137.508) % 360;
    return 'hsl(' + h.toFixed(0) + ',62%,50%)';
  }

  /* ---- cards and galleries ---- */
  var FILTER = { cls: '', flagged: false, reason: '', score: 1 };
  var REASONS = {}, CLASSES = {};

  function thumb(m, id) {
    var t = m.thumbs ? m.thumbs[id] : undefined;
    if (typeof t === 'string') return el('img', { src: t, alt: id, title: id });
    if (t && t.err) return el('div', { cls: 'ph bad', title: t.err }, t.err);
    return el('div', { cls: 'ph' }, 'no thumbnail');
  }
  function card(m, r, lines) {
    var given = className(m, r.label);
    /* long ids keep their tail, the part that differs ("…test-03881"); the title has it all */
    var shown = r.id.length > 11 ? '…' + r.id.slice(-10) : r.id;
    var c = el('div', { cls: 'card' }, thumb(m, r.id), el('div', { cls: 'id', title: r.id, text: shown }));
    c.dataset.id = r.id;
    var sug = r.suggested_label;
    if (r.label !== undefined) {
      var lab = el('div', { cls: 'lab', title: given });
      lab.appendChild(document.createTextNode(given));
      if (sug !== undefined && sug !== null && sug !== r.label) {
        lab.appendChild(el('span', { cls: 'arrow', text: ' → ' }));
        lab.appendChild(document.createTextNode(className(m, sug)));
        lab.title = given + ' → ' + className(m, sug);
      }
      c.appendChild(lab);
    }
    if (r.label_quality !== undefined && r.label_quality !== null) {
      c.appendChild(el('div', { cls: 'meta', text: 'quality ' + fmt(r.label_quality, 3) }));
    }
    (lines || []).forEach(function (t) { if (t) c.appendChild(el('div', { cls: 'meta', title: t, text: t })); });
    if (r.error) c.appendChild(el('div', { cls: 'meta error-line', title: r.error, text: r.error }));
    var reason = reasonKind(r);
    if (r.is_label_issue) c.classList.add('flagged');
    if (r.keep === false) c.classList.add('removed');
    c.dataset.manifest = m.name;
    c.dataset.cls = r.label === undefined || r.label === null ? '' : given;
    c.dataset.flagged = r.is_label_issue ? '1' : '0';
    c.dataset.reason = reason;
    if (r.label_quality !== undefined && r.label_quality !== null) c.dataset.score = r.label_quality;
    if (reason) REASONS[reason] = 1;
    if (c.dataset.cls) CLASSES[c.dataset.cls] = 1;
    return c;
  }
  function gallery(m, rows, lines) {
    var g = el('div', { cls: 'gallery' });
    rows.forEach(function (r) { g.appendChild(card(m, r, lines ? lines(r) : null)); });
    return g;
  }
  function passes(c) {
    var d = c.dataset;
    if (FILTER.cls && d.cls !== FILTER.cls) return false;
    if (FILTER.flagged && d.flagged !== '1') return false;
    if (FILTER.reason && d.reason !== FILTER.reason) return false;
    if (FILTER.score < 1 && d.score !== undefined && Number(d.score) > FILTER.score) return false;
    return true;
  }
  function applyFilters() {
    var cards = document.querySelectorAll('.card'), shown = 0;
    for (var i = 0; i < cards.length; i++) {
      var ok = passes(cards[i]);
      cards[i].classList.toggle('hidden', !ok);
      if (ok) shown++;
    }
    var count = document.getElementById('visible-count');
    count.textContent = shown.toLocaleString('en-US') + ' of ' + cards.length.toLocaleString('en-US') + ' rows shown';
    count.dataset.visible = shown;
  }

  /* ---- charts (HTML bars, SVG columns) ---- */
  var MAX_BARS = 40;
  function bars(items, kind) {
    var max = Math.max.apply(null, items.map(function (it) { return it.value; }).concat([1e-12]));
    var b = el('div', { cls: 'bars' }), more = items.length - MAX_BARS;
    if (more > 0) {  /* many classes: the largest values, then how many are left out */
      items = items.slice().sort(function (p, q) { return q.value - p.value; }).slice(0, MAX_BARS);
    }
    items.forEach(function (it) {
      b.appendChild(el('span', { text: it.label }));
      var w = Math.max(0.2, 100 * it.value / max);
      b.appendChild(el('div', {}, el('div', { cls: 'bar ' + (it.kind || kind || ''), style: 'width:' + w + '%' })));
      b.appendChild(el('span', { cls: 'num', text: it.text || fmt(it.value) }));
    });
    if (more > 0) b.appendChild(el('span', { cls: 'note', text: '… ' + more + ' more (the ' + MAX_BARS + ' largest shown)' }));
    return b;
  }
  var SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var n = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    return n;
  }
  /* series: [{values, colour, name, tick}] drawn as overlaid columns (tick: a short line). */
  function columns(series, title) {
    var W = 1100, H = 220, L = 44, B = 22, n = series[0].values.length;
    var max = 1e-12;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v > max) max = v; }); });
    var s0 = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, cls: 'chart', 'class': 'chart', role: 'img' });
    s0.appendChild(svg('title', {})).textContent = title;
    var bw = (W - L - 4) / n;
    series.forEach(function (s) {
      var path = '';
      s.values.forEach(function (v, i) {
        var x = L + i * bw, h = (H - B - 6) * v / max, y = H - B - h;
        if (s.tick) path += 'M' + x.toFixed(1) + ' ' + y.toFixed(1) + 'h' + Math.max(bw, 1.5).toFixed(1);
        else path += 'M' + (x + bw * 0.1).toFixed(1) + ' ' + (H - B) + 'V' + y.toFixed(1);
      });
      s0.appendChild(svg('path', {
        d: path, stroke: s.colour, 'stroke-width': s.tick ? 2 : Math.max(bw * 0.8, 0.6), fill: 'none'
      }));
    });
    s0.appendChild(svg('line', { x1: L, x2: W, y1: H - B, y2: H - B, stroke: '#999' }));
    [0, 0.5, 1].forEach(function (f) {
      var t = svg('text', { x: L - 4, y: H - B - (H - B - 6) * f + 4, 'text-anchor': 'end' });
      t.textContent = fmt(Math.round(max * f));
      s0.appendChild(t);
    });
    var t = svg('text', { x: L, y: H - 6 });
    t.textContent = n + ' clusters, largest first';
    s0.appendChild(t);
    var lg = el('div', { cls: 'legend' });
    series.forEach(function (s) { lg.appendChild(el('span', {}, el('i', { style: 'background:' + s.colour }), s.name)); });
    return el('div', {}, s0, lg);
  }
  function table(head, rows) {
    var t = el('table', {}, el('tr', {}));
    head.forEach(function (h) { t.firstChild.appendChild(el('th', { cls: h.num ? 'num' : '', text: h.name || h })); });
    rows.forEach(function (r) {
      var tr = el('tr', {});
      r.forEach(function (v, i) { tr.appendChild(el('td', { cls: head[i].num ? 'num' : '', text: fmt(v) })); });
      t.appendChild(tr);
    });
    return t;
  }
  function section(id, title, note) {
    return el('section', { id: id }, el('h3', { text: title }), note ? el('p', { cls: 'note', text: note }) : null);
  }

  /* ---- sections ---- */
  function summary(m, s) {
    var sec = section(m.name + '-summary', 'Summary');
    var kv = [['rows', s.rows], ['columns', s.columns.join(', ')]];
    if (s.step) kv.push(['written by', s.step]);
    Object.keys(s.counts || {}).forEach(function (k) {
      var v = s.counts[k];
      if (typeof v !== 'object' && k !== 'rows') kv.push([k, v]);
    });
    var left = el('div', {}, table(['', ''], kv));
    left.firstChild.className = 'kv';
    var right = el('div', {});
    if (s.history && s.history.length) {
      right.appendChild(el('h4', { text: 'steps (run.json history)' }));
      right.appendChild(table(['step', 'at'], s.history.map(function (h) { return [h.step, h.at]; })));
    }
    if (s.errors) {
      right.appendChild(el('h4', { text: 'errors by kind' }));
      right.appendChild(s.errors.length ? bars(s.errors.map(function (e) { return { label: e.kind, value: e.n, kind: 'bad' }; }))
        : el('p', { cls: 'note', text: 'no row has an error' }));
    }
    var cols = el('div', { cls: 'cols' }, left, right);
    if (s.classes) {
      cols.appendChild(el('div', {}, el('h4', { text: 'rows per class' }),
        bars(s.classes.map(function (c) { return { label: className(m, c.label), value: c.n }; }))));
    }
    sec.appendChild(cols);
    return sec;
  }
  function labelIssues(m, s) {
    var note = (s.flagged !== undefined ? fmt(s.flagged) + ' flagged of ' + fmt(s.audited) + ' audited (' + pct(s.flagged, s.audited) + '). ' : '') +
      'Gallery: the ' + s.worst.length + ' lowest label_quality rows, worst first (given → suggested).';
    var sec = section(m.name + '-label-issues', 'Label issues', note);
    var g = gallery(m, s.worst);
    g.id = m.name + '-worst';
    g.classList.add('worst');
    sec.appendChild(g);
    var cols = el('div', { cls: 'cols' });
    if (s.pairs) {
      cols.appendChild(el('div', {}, el('h4', { text: 'flagged: given → suggested' }),
        table(['given', 'suggested', { name: 'rows', num: 1 }], s.pairs.map(function (p) {
          return [className(m, p.label), className(m, p.suggested_label), p.n];
        }))));
    }
    if (s.per_class) {
      cols.appendChild(el('div', {}, el('h4', { text: 'flagged rate per class' }),
        bars(s.per_class.map(function (c) {
          return { label: className(m, c.label), value: c.n ? c.flagged / c.n : 0, kind: 'bad', text: pct(c.flagged, c.n) + ' of ' + fmt(c.n) };
        }))));
    }
    sec.appendChild(cols);
    return sec;
  }
  function pruning(m, s) {
    var total = s.reasons.reduce(function (a, r) { return a + r.n; }, 0);
    var sec = section(m.name + '-pruning', 'Pruning' + (s.method ? ' (' + s.method + ')' : ''));
    sec.appendChild(bars(s.reasons.map(function (r) {
      return { label: r.reason, value: r.n, kind: r.reason === 'kept' ? 'good' : 'bad', text: fmt(r.n) + ' (' + pct(r.n, total) + ')' };
    })));
    var per = s.per_cluster;
    if (per && per.size) {
      var order = per.size.map(function (_, i) { return i; }).sort(function (a, b) { return per.size[b] - per.size[a]; });
      var pick = function (k) { return order.map(function (i) { return per[k][i]; }); };
      var series = [{ values: pick('size'), colour: '#c9d3e3', name: 'size' }];
      if (per.kept) series.push({ values: pick('kept'), colour: '#2e8b57', name: 'kept' });
      if (per.quota) series.push({ values: pick('quota'), colour: '#d1432f', name: 'quota', tick: true });
      sec.appendChild(el('h4', { text: 'per cluster: size, kept' + (per.quota ? ', quota' : '') }));
      sec.appendChild(columns(series, 'per-cluster size, kept and quota'));
    }
    if (s.groups && s.groups.length) {
      sec.appendChild(el('h4', { text: 'duplicate groups (largest first): the row SemDeDup kept (green; red when a later step removed it), then the duplicates it removed, with their cosine to it' }));
      var box = el('div', { cls: 'groups' });
      s.groups.forEach(function (g) {
        var row = el('div', { cls: 'group' });
        var fate = g.kept.keep === false ? 'later ' + reasonKind(g.kept) : 'kept';
        var k = card(m, g.kept, [fate, 'group of ' + (g.n + 1)]);
        if (g.kept.keep !== false) k.classList.add('kept');
        row.appendChild(k);
        row.appendChild(el('span', { cls: 'sep', text: '⟵' }));
        g.removed.forEach(function (r) { row.appendChild(card(m, r, ['cos ' + fmt(r.cos, 4)])); });
        if (g.n > g.removed.length) row.appendChild(el('span', { cls: 'note', text: '+' + (g.n - g.removed.length) + ' more' }));
        box.appendChild(row);
      });
      sec.appendChild(box);
    }
    if (s.removed && s.removed.length) {
      var by = {};
      s.removed.forEach(function (r) { (by[r.reason_kind] = by[r.reason_kind] || []).push(r); });
      Object.keys(by).forEach(function (k) {
        sec.appendChild(el('h4', { text: 'random sample of removed rows: ' + k }));
        sec.appendChild(gallery(m, by[k], function (r) { return [r.prune_reason]; }));
      });
    }
    return sec;
  }
  function clusters(m, s) {
    var sec = section(m.name + '-clusters', 'Clusters', s.k + ' clusters; rows: the nearest to each centroid of the ' + s.grid.length + ' largest.');
    sec.appendChild(columns([{ values: s.sizes, colour: '#4e79a7', name: 'rows per cluster' }], 'cluster sizes'));
    s.grid.forEach(function (c) {
      var row = el('div', { cls: 'cluster-row' }, el('div', { cls: 'title', text: 'cluster ' + c.cluster + ' · ' + fmt(c.n) + ' rows' }));
      c.rows.forEach(function (r) { row.appendChild(card(m, r, r.centroid_sim !== undefined ? ['sim ' + fmt(r.centroid_sim, 3)] : null)); });
      sec.appendChild(row);
    });
    return sec;
  }
  function soft(m, s) {
    var sec = section(m.name + '-soft', 'Soft labels', fmt(s.n) + ' rows with soft labels; mean top-1 probability ' + fmt(s.top1_mean, 3) +
      '; top-1 differs from the label in ' + fmt(s.disagree) + ' (' + pct(s.disagree, s.n) + '). Those rows first.');
    sec.appendChild(gallery(m, s.rows, function (r) {
      return r.soft_classes.slice(0, 3).map(function (k, i) { return className(m, k) + ' ' + fmt(r.soft_probs[i], 2); });
    }));
    return sec;
  }
  function multi(m, s) {
    var sec = section(m.name + '-multi', 'Multi-labels');
    sec.appendChild(bars(s.sizes.map(function (z) { return { label: (z.k === null ? 'none' : z.k) + ' labels', value: z.n }; })));
    if (s.rows.length) {
      sec.appendChild(el('h4', { text: 'rows with more than one label' }));
      sec.appendChild(gallery(m, s.rows, function (r) { return [r.labels.map(function (k) { return className(m, k); }).join(', ')]; }));
    }
    return sec;
  }
  function perClass(m, s) {
    var sec = section(m.name + '-per-class', s.synthetic ? 'Synthetic images by class' : 'Rows by class', 'A few rows of every class (sampled by hash of id).');
    sec.appendChild(gallery(m, s.rows));
    return sec;
  }
  function sameAs(m, key, other) {
    var title = { label_issues: 'Label issues', per_class: 'Rows by class', clusters: 'Clusters' }[key] || key;
    var sec = section(m.name + '-' + key.replace('_', '-'), title);
    sec.appendChild(el('p', { cls: 'note' }, 'The same rows as in ', el('a', { href: '#' + other + '-' + key.replace('_', '-'), text: other }), ' above (these columns came from it).'));
    return sec;
  }
  function evaluation(e) {
    var sec = section('evaluation', 'Evaluation', e.path);
    var keys = ['subset', 'rows', 'accuracy_mean', 'accuracy_std', 'random_accuracy_mean', 'random_accuracy_std', 'delta_vs_random'];
    sec.appendChild(table(keys.map(function (k) { return { name: k, num: k !== 'subset' }; }),
      e.results.map(function (r) { return keys.map(function (k) { return r[k]; }); })));
    return sec;
  }

  /* ---- embedding map: WebGL points, Canvas 2D where WebGL is missing ---- */
  function mapSection(m, s) {
    var sec = section(m.name + '-map', 'Embedding map', 'PCA of ' + fmt(s.n) + ' rows' + (s.n < s.of ? ' (sampled by hash of id from ' + fmt(s.of) + ')' : '') + '. Hover a point for its id and thumbnail.');
    var keys = Object.keys(s.colour);
    var pickC = el('select', { 'aria-label': 'colour by' });
    keys.forEach(function (k) { pickC.appendChild(el('option', { value: k, text: k === 'is_label_issue' ? 'flagged' : k })); });
    var legend = el('div', { cls: 'legend' });
    var canvas = el('canvas', { cls: 'map', id: m.name + '-map-canvas' });
    sec.appendChild(keys.length ? el('label', { cls: 'note' }, 'colour by ', pickC)
      : el('p', { cls: 'note', text: 'one colour: the manifest has no label, cluster, keep or is_label_issue column' }));
    sec.appendChild(legend);
    sec.appendChild(el('div', { cls: 'mapwrap' }, canvas));
    var xy = decode(s.xy, Float32Array), cols = {};
    keys.forEach(function (k) { cols[k] = decode(s.colour[k], Int16Array); });
    var state = { canvas: canvas, xy: xy, n: s.n, ids: s.ids, m: m, key: keys[0] };
    pickC.addEventListener('change', function () { state.key = pickC.value; drawMap(state, cols, legend); });
    MAPS.push(function () { drawMap(state, cols, legend); });
    canvas.addEventListener('mousemove', function (ev) { hover(state, ev); });
    canvas.addEventListener('mouseleave', function () { tip.hidden = true; });
    return sec;
  }
  var MAPS = [];
  function legendFor(state, vals, legend) {
    legend.textContent = '';
    var k = state.key, names = {};
    if (!k) return;
    if (k === 'keep') names = { 0: 'removed', 1: 'kept' };
    else if (k === 'is_label_issue') names = { 0: 'not flagged', 1: 'flagged' };
    var seen = {};
    for (var i = 0; i < vals.length; i++) seen[vals[i]] = 1;
    var levels = Object.keys(seen).map(Number).sort(function (a, b) { return a - b; });
    if (levels.length > 30) { legend.appendChild(el('span', { text: levels.length + ' ' + k + ' values; colours repeat' })); return; }
    levels.forEach(function (v) {
      var name = names[v] || (v < 0 ? 'none' : (k === 'label' ? className(state.m, v) : k + ' ' + v));
      legend.appendChild(el('span', {}, el('i', { style: 'background:' + colourOf(v) }), name));
    });
  }
  function rgb(css) {
    var c = document.createElement('canvas').getContext('2d');
    c.fillStyle = css;
    var h = c.fillStyle;
    if (h[0] === '#') return [parseInt(h.substr(1, 2), 16) / 255, parseInt(h.substr(3, 2), 16) / 255, parseInt(h.substr(5, 2), 16) / 255];
    var p = h.match(/[\d.]+/g).map(Number);
    return [p[0] / 255, p[1] / 255, p[2] / 255];
  }
  function drawMap(state, cols, legend) {
    var canvas = state.canvas, dpr = window.devicePixelRatio || 1;
    var W = canvas.clientWidth || 800, H = canvas.clientHeight || 560;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    var vals = state.key ? cols[state.key] : new Int16Array(state.n);
    if (!state.key) for (var z = 0; z < state.n; z++) vals[z] = 0;
    state.vals = vals;
    legendFor(state, vals, legend);
    var pad = 12, px = new Float32Array(2 * state.n);
    for (var i = 0; i < state.n; i++) {
      px[2 * i] = pad + state.xy[2 * i] * (W - 2 * pad);
      px[2 * i + 1] = pad + (1 - state.xy[2 * i + 1]) * (H - 2 * pad);
    }
    state.px = px;
    var size = state.n > 20000 ? 3 : state.n > 3000 ? 4 : 6;
    var cache = {};
    var colour = function (v) { return cache[v] || (cache[v] = rgb(colourOf(v))); };
    var gl = state.gl || canvas.getContext('webgl', { preserveDrawingBuffer: true, antialias: false });
    if (gl) { state.gl = gl; drawGL(gl, state, px, vals, colour, size * dpr, W, H); canvas.dataset.renderer = 'webgl'; }
    else { draw2D(canvas.getContext('2d'), state, px, vals, colour, size, dpr); canvas.dataset.renderer = '2d'; }
    canvas.dataset.points = state.n;
  }
  function drawGL(gl, state, px, vals, colour, size, W, H) {
    if (!state.prog) {
      var vs = 'attribute vec2 p; attribute vec3 c; uniform float s; varying vec3 v;' +
        'void main(){ gl_Position = vec4(p, 0.0, 1.0); gl_PointSize = s; v = c; }';
      var fs = 'precision mediump float; varying vec3 v;' +
        'void main(){ vec2 d = gl_PointCoord - 0.5; if (dot(d, d) > 0.25) discard; gl_FragColor = vec4(v * 0.85, 0.85); }';
      var prog = gl.createProgram();
      [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]].forEach(function (p) {
        var sh = gl.createShader(p[0]); gl.shaderSource(sh, p[1]); gl.compileShader(sh); gl.attachShader(prog, sh);
      });
      gl.linkProgram(prog);
      state.prog = prog; state.buf = [gl.createBuffer(), gl.createBuffer()];
    }
    var clip = new Float32Array(px.length), rgbs = new Float32Array(3 * state.n);
    for (var i = 0; i < state.n; i++) {
      clip[2 * i] = px[2 * i] / W * 2 - 1; clip[2 * i + 1] = 1 - px[2 * i + 1] / H * 2;
      var c = colour(vals[i]); rgbs[3 * i] = c[0]; rgbs[3 * i + 1] = c[1]; rgbs[3 * i + 2] = c[2];
    }
    gl.viewport(0, 0, gl.drawingBufferWidth, gl.drawingBufferHeight);
    gl.clearColor(1, 1, 1, 1); gl.clear(gl.COLOR_BUFFER_BIT);
    gl.enable(gl.BLEND); gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.useProgram(state.prog);
    [['p', clip, 2], ['c', rgbs, 3]].forEach(function (a, j) {
      var loc = gl.getAttribLocation(state.prog, a[0]);
      gl.bindBuffer(gl.ARRAY_BUFFER, state.buf[j]); gl.bufferData(gl.ARRAY_BUFFER, a[1], gl.STATIC_DRAW);
      gl.enableVertexAttribArray(loc); gl.vertexAttribPointer(loc, a[2], gl.FLOAT, false, 0, 0);
    });
    gl.uniform1f(gl.getUniformLocation(state.prog, 's'), size);
    gl.drawArrays(gl.POINTS, 0, state.n);
  }
  function draw2D(ctx, state, px, vals, colour, size, dpr) {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    ctx.globalAlpha = 0.85;
    for (var i = 0; i < state.n; i++) {
      var c = colour(vals[i]);
      ctx.fillStyle = 'rgb(' + (c[0] * 217 | 0) + ',' + (c[1] * 217 | 0) + ',' + (c[2] * 217 | 0) + ')';
      ctx.fillRect(px[2 * i] - size / 2, px[2 * i + 1] - size / 2, size, size);
    }
    ctx.globalAlpha = 1;
  }
  function hover(state, ev) {
    if (!state.px) return;
    var r = state.canvas.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    var best = -1, bd = 64;
    for (var i = 0; i < state.n; i++) {
      var dx = state.px[2 * i] - x, dy = state.px[2 * i + 1] - y, d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = i; }
    }
    if (best < 0) { tip.hidden = true; return; }
    var id = state.ids[best], t = state.m.thumbs[id];
    tip.textContent = '';
    if (typeof t === 'string') tip.appendChild(el('img', { src: t, alt: id }));
    else if (DATA.serve) tip.appendChild(el('img', { src: 'thumb?m=' + encodeURIComponent(state.m.name) + '&id=' + encodeURIComponent(id), alt: id }));
    tip.appendChild(el('div', { text: id }));
    if (state.key) {
      var v = state.vals[best];
      var name = state.key === 'label' ? className(state.m, v) : state.key === 'keep' ? (v ? 'kept' : 'removed') :
        state.key === 'is_label_issue' ? (v ? 'flagged' : 'not flagged') : String(v);
      tip.appendChild(el('div', { text: state.key + ': ' + name }));
    }
    tip.style.left = (ev.clientX + 14) + 'px'; tip.style.top = (ev.clientY + 14) + 'px';
    tip.hidden = false;
  }

  /* ---- filters, layout ---- */
  function filters() {
    var f = document.getElementById('filters');
    var cls = el('select', { id: 'filter-class' }, el('option', { value: '', text: 'all classes' }));
    Object.keys(CLASSES).sort().forEach(function (c) { cls.appendChild(el('option', { value: c, text: c })); });
    var reason = el('select', { id: 'filter-reason' }, el('option', { value: '', text: 'any reason' }));
    Object.keys(REASONS).sort().forEach(function (c) { reason.appendChild(el('option', { value: c, text: c })); });
    var flagged = el('input', { type: 'checkbox', id: 'filter-flagged' });
    var score = el('input', { type: 'range', id: 'filter-score', min: 0, max: 1, step: 0.01, value: 1 });
    var scoreText = el('span', { text: 'any' });
    cls.addEventListener('change', function () { FILTER.cls = cls.value; applyFilters(); });
    reason.addEventListener('change', function () { FILTER.reason = reason.value; applyFilters(); });
    flagged.addEventListener('change', function () { FILTER.flagged = flagged.checked; applyFilters(); });
    score.addEventListener('input', function () {
      FILTER.score = Number(score.value); scoreText.textContent = FILTER.score < 1 ? '≤ ' + FILTER.score.toFixed(2) : 'any';
      applyFilters();
    });
    f.appendChild(el('label', {}, 'class', cls));
    f.appendChild(el('label', {}, flagged, 'flagged only'));
    if (Object.keys(REASONS).length) f.appendChild(el('label', {}, 'reason', reason));
    f.appendChild(el('label', {}, 'label quality', score, scoreText));
    f.appendChild(el('span', { id: 'visible-count' }));
  }
  var UI = { el: el, card: card, gallery: gallery, section: section, bars: bars, table: table, fmt: fmt, pct: pct, className: className };
  function check(m, s) { return window.CurateCheck.render(m, s, UI); }
  var RENDER = [['summary', summary], ['check', check], ['label_issues', labelIssues], ['pruning', pruning], ['clusters', clusters],
    ['soft', soft], ['multi', multi], ['per_class', perClass], ['map', mapSection]];
  function manifest(m) {
    var box = el('div', { cls: 'manifest', id: m.name }, el('h2', { text: m.name }),
      el('div', { cls: 'path', text: m.path + ' · ' + fmt(m.rows) + ' rows' }));
    var toc = el('nav', { cls: 'toc' });
    box.appendChild(toc);
    RENDER.forEach(function (p) {
      var data = m.sections[p[0]];
      if (!data) return;
      var sec = data.same_as ? sameAs(m, p[0], data.same_as) : p[1](m, data);
      toc.appendChild(el('a', { href: '#' + sec.id, text: sec.querySelector('h3').textContent }));
      box.appendChild(sec);
    });
    return box;
  }
  function main() {
    app.textContent = '';
    if (DATA.serve && window.CurateServe) app.appendChild(window.CurateServe.panel(DATA, card));
    if (DATA.evaluation) app.appendChild(evaluation(DATA.evaluation));
    DATA.manifests.forEach(function (m) { app.appendChild(manifest(m)); });
    app.appendChild(el('p', { cls: 'note', text: 'generated ' + DATA.generated + ' by curate report' }));
    filters();
    applyFilters();
    MAPS.forEach(function (draw) { draw(); });
    document.body.dataset.ready = '1';
  }
  window.CurateReport = { applyFilters: applyFilters, card: card, gallery: gallery, el: el };
  main();
})();
