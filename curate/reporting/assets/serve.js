/* curate serve: a paged gallery over any SQL WHERE / ORDER BY, asked of the page's own server. */
(function () {
  'use strict';
  function panel(DATA, card) {
    var R = window.CurateReport, el = R.el, page = 0;
    var sec = el('section', { id: 'query' }, el('h3', { text: 'Query' }),
      el('p', { cls: 'note', text: 'Any DuckDB WHERE and ORDER BY over a manifest (read-only), e.g. WHERE is_label_issue, ORDER BY label_quality.' }));
    var pick = el('select', { id: 'query-manifest' });
    DATA.manifests.forEach(function (m) { pick.appendChild(el('option', { value: m.name, text: m.name })); });
    var where = el('input', { type: 'text', id: 'query-where', placeholder: 'WHERE (e.g. label = 3 AND keep)' });
    var order = el('input', { type: 'text', id: 'query-order', placeholder: 'ORDER BY (default id)' });
    var run = el('button', { id: 'query-run', type: 'button', text: 'Run' });
    var prev = el('button', { id: 'query-prev', type: 'button', text: '← prev' });
    var next = el('button', { id: 'query-next', type: 'button', text: 'next →' });
    var status = el('span', { id: 'query-status', cls: 'note' });
    var out = el('div', { id: 'query-gallery', cls: 'gallery' });
    sec.appendChild(el('div', { cls: 'query' }, pick, where, order, run, prev, next, status));
    sec.appendChild(out);
    function load() {
      var m = DATA.manifests.filter(function (x) { return x.name === pick.value; })[0];
      var qs = 'm=' + encodeURIComponent(pick.value) + '&where=' + encodeURIComponent(where.value) +
        '&order=' + encodeURIComponent(order.value) + '&page=' + page + '&size=60';
      status.textContent = 'loading…';
      fetch('api/rows?' + qs).then(function (r) { return r.json(); }).then(function (res) {
        out.textContent = '';
        if (res.error) { status.textContent = res.error; status.className = 'error-line'; out.dataset.rows = 0; return; }
        status.className = 'note';
        var view = { name: m.name, classes: m.classes, thumbs: res.thumbs };
        res.rows.forEach(function (r) { out.appendChild(card(view, r)); });
        var first = page * 60;
        status.textContent = 'rows ' + (res.rows.length ? first + 1 : 0) + '–' + (first + res.rows.length) + ' of ' + res.total.toLocaleString('en-US');
        out.dataset.rows = res.rows.length; out.dataset.page = page; out.dataset.total = res.total;
        R.applyFilters();
      }).catch(function (e) { status.textContent = 'request failed: ' + e; status.className = 'error-line'; });
    }
    run.addEventListener('click', function () { page = 0; load(); });
    prev.addEventListener('click', function () { if (page > 0) { page--; load(); } });
    next.addEventListener('click', function () { page++; load(); });
    [where, order].forEach(function (i) { i.addEventListener('keydown', function (e) { if (e.key === 'Enter') { page = 0; load(); } }); });
    setTimeout(load, 0);
    return sec;
  }
  window.CurateServe = { panel: panel };
})();
