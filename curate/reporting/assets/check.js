/* curate report: the Check section (curate check's columns). Loaded before report.js, which
   calls CurateCheck.render(m, s, ui) with its own helpers (el, card, gallery, section, ...). */
(function () {
  'use strict';
  var TITLES = {
    exact_dup: 'exact duplicates (the same decoded pixels)', phash_dup: 'perceptual-hash near-duplicates (not exact)',
    near_dup: 'embedding near-duplicates (not exact)', outlier: 'outliers (mean cosine distance to the nearest rows)',
    dark: 'dark', light: 'light', blurry: 'blurry', low_information: 'low information',
    odd_size: 'odd size', odd_aspect_ratio: 'odd aspect ratio', grayscale: 'grayscale in a colour set'
  };

  function otherCard(ui, m, side, id) {
    var t = side ? side.thumb : null;
    var img = typeof t === 'string' ? ui.el('img', { src: t, alt: id, title: id })
      : ui.el('div', { cls: 'ph' + (t && t.err ? ' bad' : ''), title: t && t.err ? t.err : '' }, t && t.err ? t.err : 'not found');
    var shown = id.length > 11 ? '…' + id.slice(-10) : id;
    var c = ui.el('div', { cls: 'card other' }, img, ui.el('div', { cls: 'id', title: id, text: shown }));
    if (side && side.label !== undefined && side.label !== null) c.appendChild(ui.el('div', { cls: 'lab', text: ui.className(m, side.label) }));
    return c;
  }
  function pairRow(ui, m, a, b, lines, bCard) {
    var row = ui.el('div', { cls: 'group pair' });
    row.appendChild(ui.card(m, a, lines));
    row.appendChild(ui.el('span', { cls: 'sep', text: '⟷' }));
    row.appendChild(bCard || (b ? ui.card(m, b) : ui.el('div', { cls: 'ph' }, 'not in this manifest')));
    return row;
  }
  function leaks(ui, m, s, sec) {
    var lk = s.leaks;
    sec.appendChild(ui.el('h4', { text: 'leaks: ' + ui.fmt(lk.by.reduce(function (a, r) { return a + r.n; }, 0)) + ' of ' + ui.fmt(lk.checked) +
      ' checked rows near-duplicate a reference row (left: the row; right: what it leaks into)' }));
    if (lk.by.length) {
      sec.appendChild(ui.table(['signal', 'source', { name: 'rows', num: 1 }], lk.by.map(function (r) { return [r.signal, r.source, r.n]; })));
    }
    var box = ui.el('div', { cls: 'groups', id: m.name + '-leaks' });
    lk.pairs.forEach(function (p) {
      var other = p.source.indexOf('against:') === 0;
      var lines = [p.by + (p.sim !== null && p.sim !== undefined ? ' · cos ' + ui.fmt(p.sim, 4) : ''), p.source];
      box.appendChild(pairRow(ui, m, p.a, p.b, lines, other ? otherCard(ui, m, (lk.other || {})[p.of], p.of) : null));
    });
    sec.appendChild(box);
    if (lk.other && lk.other.error) sec.appendChild(ui.el('p', { cls: 'note error-line', text: lk.other.error }));
  }
  function render(m, s, ui) {
    var total = s.counts.reduce(function (a, c) { return Math.max(a, c.n); }, 0);
    var sec = ui.section(m.name + '-check', 'Check', (s.notes || []).join(' · ') || null);
    sec.appendChild(ui.bars(s.counts.map(function (c) {
      return { label: c.issue, value: c.n, kind: 'bad', text: ui.fmt(c.n) + ' (' + ui.pct(c.n, m.rows) + ')' };
    })));
    if (!total) sec.appendChild(ui.el('p', { cls: 'note', text: 'no issue found' }));
    if (s.leaks && s.leaks.pairs.length) leaks(ui, m, s, sec);
    Object.keys(s.pairs || {}).forEach(function (k) {
      sec.appendChild(ui.el('h4', { text: TITLES[k] + ': the row ⟷ the earlier row it repeats' }));
      var box = ui.el('div', { cls: 'groups', id: m.name + '-' + k });
      s.pairs[k].forEach(function (p) {
        var line = k === 'near_dup' ? 'cos ' + ui.fmt(p.score, 4) : 'hamming ' + ui.fmt(p.score);
        box.appendChild(pairRow(ui, m, p.a, p.b, [line]));
      });
      sec.appendChild(box);
    });
    Object.keys(s.worst || {}).forEach(function (k) {
      var w = s.worst[k];
      sec.appendChild(ui.el('h4', { text: TITLES[k] + ': worst first (' + w.score + ')' }));
      var g = ui.gallery(m, w.rows, function (r) { return [w.score.replace('_score', '') + ' ' + ui.fmt(r[w.score], 3)]; });
      g.id = m.name + '-check-' + k;
      sec.appendChild(g);
    });
    return sec;
  }
  window.CurateCheck = { render: render };
})();
