// The SQL tab: a read-only query console over the store's views (POST /api/sql), a results
// table, the server's error message, and "Download CSV" of the rows shown.

import { postSQL } from './api.js';
import { toCSV } from './csv.js';
import { h } from './dom.js';

const EXAMPLE = `-- the last loss of every run, with its learning rate
SELECT r.name, r.status, r.config->>'lr' AS lr, arg_max(s.value, s.step) AS last_loss, max(s.step) AS steps
FROM scalars s JOIN runs r USING (run_id)
WHERE s.tag = 'train/loss'
GROUP BY ALL
ORDER BY last_loss`;

const STORAGE_KEY = 'runstream.sql';

export function createSqlView(root) {
  let result = null;
  let busy = false;
  const input = h('textarea', {
    class: 'sql-input',
    spellcheck: 'false',
    dataset: { testid: 'sql-input' },
    'aria-label': 'SQL query',
  });
  input.value = localStorage.getItem(STORAGE_KEY) ?? EXAMPLE;
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  });
  const runBtn = h('button', { class: 'primary', dataset: { testid: 'sql-run' }, onclick: () => run() }, 'Run');
  const limit = h('input', { type: 'number', min: '1', max: '100000', value: '1000', class: 'sql-limit', title: 'Row cap' });
  const csvBtn = h('button', { dataset: { testid: 'sql-csv' }, disabled: true, onclick: () => download() }, 'Download CSV');
  const meta = h('span', { class: 'muted small sql-meta' });
  const error = h('pre', { class: 'sql-error', dataset: { testid: 'sql-error' }, hidden: true, role: 'alert' });
  const table = h('table', { class: 'sql-results', dataset: { testid: 'sql-results' } });
  const help = h(
    'div',
    { class: 'muted small sql-help' },
    'Views: runs(run_id, project, name, config, status, created_at, finished_at, host, world_size) · scalars(run_id, tag, step, rank, wall_time, value) · histograms(run_id, tag, step, rank, wall_time, count, min, max, sum, sum_squares, bucket_limits, bucket_counts) · images(run_id, tag, step, rank, wall_time, width, height, mime, data). One read-only statement; Ctrl+Enter runs it.',
  );
  root.append(
    h(
      'div',
      { class: 'sql-view' },
      input,
      h('div', { class: 'sql-actions' }, runBtn, h('label', { class: 'ctl' }, 'limit ', limit), csvBtn, meta),
      help,
      error,
      h('div', { class: 'sql-results-wrap' }, table),
    ),
  );

  async function run() {
    if (busy) return;
    const sql = input.value.trim();
    if (!sql) return;
    localStorage.setItem(STORAGE_KEY, input.value);
    busy = true;
    runBtn.disabled = true;
    runBtn.textContent = 'Running…';
    error.hidden = true;
    meta.textContent = '';
    try {
      result = await postSQL(sql, Number(limit.value) || 1000);
      renderResult();
    } catch (e) {
      result = null;
      table.replaceChildren();
      csvBtn.disabled = true;
      error.textContent = e.message;
      error.hidden = false;
    } finally {
      busy = false;
      runBtn.disabled = false;
      runBtn.textContent = 'Run';
    }
  }

  function cell(v) {
    if (v === null || v === undefined) return h('td', { class: 'null' }, 'NULL');
    if (typeof v === 'number') return h('td', { class: 'num' }, String(v));
    if (typeof v === 'object') return h('td', { class: 'json' }, JSON.stringify(v));
    return h('td', {}, String(v));
  }

  function renderResult() {
    const { columns = [], rows = [], truncated = false, elapsed_ms: ms } = result;
    table.replaceChildren(
      h('thead', {}, h('tr', {}, h('th', { class: 'rownum' }, '#'), ...columns.map((c) => h('th', {}, c)))),
      h('tbody', {}, ...rows.map((row, i) => h('tr', {}, h('td', { class: 'rownum' }, String(i + 1)), ...row.map(cell)))),
    );
    csvBtn.disabled = !columns.length;
    meta.textContent = `${rows.length.toLocaleString('en-US')} row${rows.length === 1 ? '' : 's'}${truncated ? ' (truncated at the limit)' : ''}${ms !== undefined ? ` · ${Number(ms).toFixed(1)} ms` : ''}`;
  }

  function download() {
    if (!result) return;
    const blob = new Blob([toCSV(result.columns, result.rows)], { type: 'text/csv;charset=utf-8' });
    const a = h('a', { href: URL.createObjectURL(blob), download: 'runstream-query.csv' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  return {
    setContext() {},
    show() {},
    hide() {},
    refresh() {},
  };
}
