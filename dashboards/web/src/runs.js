// The runs table (left panel): filter box, select all/none, one row per run with a checkbox,
// a colour swatch, name, status, created time, last step and one column per config key.
//
// Selection lives in the store (state.runs): null means automatic (the first MAX_AUTO_RUNS
// listed runs, so new runs show up by themselves); the first click makes it an explicit list.
//
// Run actions: each row's ⋯ opens a dialog to rename the run, edit its tags and note, archive it, or
// delete it (after a second, explicit confirmation). Archived runs are hidden unless "archived" is
// ticked (state.archived). Changes need a token with admin:PROJECT; the server's refusal is shown in
// the dialog.

import { getRuns, isAbort } from './api.js';
import { assignColors } from './colors.js';
import { h, debounce } from './dom.js';
import { fmtConfig, fmtDateTime, fmtShortTime } from './format.js';
import { MAX_AUTO_RUNS } from './state.js';

const FIXED_COLUMNS = [
  { key: 'name', label: 'Name', value: (r) => r.name || r.run_id },
  { key: 'status', label: 'Status', value: (r) => r.status || '' },
  { key: 'created_at', label: 'Created', value: (r) => r.created_at ?? 0 },
  { key: 'last_step', label: 'Step', value: (r) => r.last_step ?? -1 },
];

export function createRunsPanel(root, store, { onChange }) {
  let runs = []; // as listed by the server, filtered by q
  let configKeys = [];
  let colors = new Map();
  const colorCache = new Map(); // run_id -> colour, kept for the session (filtering keeps colours)
  let colorsFor = null;
  let sort = { key: 'created_at', dir: -1 };
  let controller = null;
  let loadedFor = null;

  const filter = h('input', {
    type: 'search',
    class: 'runs-filter',
    placeholder: 'Filter: name, id or key=value',
    title: 'Words match the run name or id; key=value matches a config value',
    value: store.get().q,
    dataset: { testid: 'runs-filter' },
    oninput: debounce(() => store.set({ q: filter.value.trim() }), 250),
  });
  const count = h('span', { class: 'runs-count' });
  const allBtn = h('button', { class: 'link', dataset: { testid: 'runs-all' }, onclick: () => selectAll(true) }, 'all');
  const noneBtn = h('button', { class: 'link', dataset: { testid: 'runs-none' }, onclick: () => selectAll(false) }, 'none');
  const headCheck = h('input', {
    type: 'checkbox',
    title: 'Select all / none',
    dataset: { testid: 'runs-select-all' },
    onchange: () => selectAll(headCheck.checked),
  });
  const archivedBox = h('input', {
    type: 'checkbox',
    checked: store.get().archived,
    dataset: { testid: 'runs-show-archived' },
    onchange: () => store.set({ archived: archivedBox.checked }),
  });
  const archivedToggle = h('label', { class: 'runs-archived-toggle', title: 'Also list archived runs' }, archivedBox, 'archived');
  const thead = h('thead');
  const tbody = h('tbody');
  const table = h('table', { class: 'runs-table', dataset: { testid: 'runs-table' } }, thead, tbody);
  const empty = h('div', { class: 'empty small', hidden: true });
  root.append(
    h('div', { class: 'runs-head' }, filter, h('div', { class: 'runs-tools' }, count, h('span', { class: 'sep' }), archivedToggle, ' · select ', allBtn, ' · ', noneBtn)),
    h('div', { class: 'runs-scroll' }, table, empty),
  );

  tbody.addEventListener('click', (e) => {
    const row = e.target.closest('tr[data-run-id]');
    if (!row) return;
    const id = row.dataset.runId;
    if (e.target.closest('button[data-testid=run-actions]')) {
      const run = runs.find((r) => r.run_id === id);
      if (run) openActions(run);
      return;
    }
    if (e.target.matches('input[type=checkbox]')) toggle(id, e.target.checked);
    else if (e.altKey || e.metaKey) setSelection([id]);
    else toggle(id, !selected().has(id));
  });

  /** The selected ids (explicit, or the automatic default). */
  function selectedIds() {
    const s = store.get().runs;
    return s === null ? runs.slice(0, MAX_AUTO_RUNS).map((r) => r.run_id) : s;
  }
  const selected = () => new Set(selectedIds());

  function setSelection(ids) {
    store.set({ runs: [...new Set(ids)] });
  }
  function toggle(id, on) {
    const ids = selectedIds().filter((x) => x !== id);
    if (on) ids.push(id);
    setSelection(ids);
  }
  function selectAll(on) {
    const listed = new Set(runs.map((r) => r.run_id));
    // runs hidden by the filter keep their selection
    const others = selectedIds().filter((id) => !listed.has(id));
    setSelection(on ? [...others, ...listed] : others);
  }

  async function load() {
    const { project, q } = store.get();
    if (!project) return;
    if (controller) controller.abort();
    controller = new AbortController();
    const key = `${project}\n${q}`;
    try {
      // colours come from the whole project (oldest run first), so a filter does not recolour
      const [res, all] = await Promise.all([
        getRuns(project, q, { signal: controller.signal }),
        q ? getRuns(project, '', { signal: controller.signal }) : null,
      ]);
      runs = (res.runs || []).filter((r) => store.get().archived || !r.archived);
      configKeys = res.config_keys || [];
      updateColors(project, all ? all.runs || [] : runs);
      loadedFor = key;
      render();
      onChange();
    } catch (e) {
      if (!isAbort(e) && loadedFor !== key) {
        runs = [];
        render();
        onChange();
      }
    }
  }

  function updateColors(project, everyRun) {
    if (colorsFor !== project) {
      colorCache.clear();
      colorsFor = project;
    }
    const fresh = assignColors(everyRun);
    for (const [id, c] of fresh) if (!colorCache.has(id)) colorCache.set(id, c);
    colors = new Map(runs.map((r) => [r.run_id, colorCache.get(r.run_id) || fresh.get(r.run_id)]));
  }

  function sortedRuns() {
    const col = FIXED_COLUMNS.find((c) => c.key === sort.key);
    const val = col ? col.value : (r) => (r.config || {})[sort.key.slice(7)];
    const cmp = (a, b) => {
      const x = val(a);
      const y = val(b);
      if (x === y) return 0;
      if (x === undefined || x === null) return 1;
      if (y === undefined || y === null) return -1;
      if (typeof x === 'number' && typeof y === 'number') return (x - y) * sort.dir;
      return String(x).localeCompare(String(y), undefined, { numeric: true }) * sort.dir;
    };
    return [...runs].sort(cmp);
  }

  function header(key, label) {
    const on = sort.key === key;
    return h(
      'th',
      {
        class: on ? 'sorted' : '',
        title: `Sort by ${label}`,
        onclick: () => {
          sort = { key, dir: on ? -sort.dir : key === 'created_at' || key === 'last_step' ? -1 : 1 };
          render();
        },
      },
      label,
      on ? h('span', { class: 'sort-arrow' }, sort.dir > 0 ? '▲' : '▼') : null,
    );
  }

  function render() {
    const sel = selected();
    thead.replaceChildren(
      h(
        'tr',
        {},
        h('th', { class: 'c-check sticky' }, headCheck),
        h('th', { class: 'c-swatch sticky2' }),
        h('th', { class: 'c-actions' }),
        ...FIXED_COLUMNS.map((c) => header(c.key, c.label)),
        ...configKeys.map((k) => header(`config.${k}`, k)),
      ),
    );
    const rows = sortedRuns().map((r) => {
      const on = sel.has(r.run_id);
      return h(
        'tr',
        { class: `${on ? 'selected' : ''}${r.archived ? ' archived' : ''}`, dataset: { testid: 'run-row', runId: r.run_id } },
        h('td', { class: 'c-check sticky' }, h('input', { type: 'checkbox', checked: on, dataset: { testid: 'run-checkbox' }, 'aria-label': `Select ${r.name}` })),
        h('td', { class: 'c-swatch sticky2' }, h('span', { class: 'swatch', style: { background: colors.get(r.run_id) } })),
        h('td', { class: 'c-actions' }, h('button', { title: 'Rename, tag, note, archive or delete', dataset: { testid: 'run-actions' }, 'aria-label': `Actions of ${r.name}` }, '⋯')),
        h(
          'td',
          { class: 'c-name', title: `${r.name}\n${r.run_id}${r.host ? `\nhost ${r.host}` : ''}${r.world_size > 1 ? `\n${r.world_size} ranks` : ''}${r.note ? `\n\n${r.note}` : ''}` },
          r.name || r.run_id,
          ...(r.tags || []).map((t) => h('span', { class: 'run-tag', dataset: { testid: 'run-tag' } }, t)),
          r.note ? h('span', { class: 'run-note', title: r.note }, '✎') : null,
          r.archived ? h('span', { class: 'run-tag', dataset: { testid: 'run-archived' } }, 'archived') : null,
        ),
        h('td', { class: 'c-status' }, h('span', { class: `status status-${r.status}` }, r.status)),
        h('td', { class: 'c-time', title: fmtDateTime(r.created_at) }, fmtShortTime(r.created_at)),
        h('td', { class: 'num' }, r.last_step ?? ''),
        ...configKeys.map((k) => {
          const v = (r.config || {})[k];
          return h('td', { class: typeof v === 'number' ? 'num' : '' }, fmtConfig(v));
        }),
      );
    });
    tbody.replaceChildren(...rows);
    const nsel = runs.filter((r) => sel.has(r.run_id)).length;
    headCheck.checked = runs.length > 0 && nsel === runs.length;
    headCheck.indeterminate = nsel > 0 && nsel < runs.length;
    count.textContent = `${runs.length} run${runs.length === 1 ? '' : 's'} · ${nsel} selected`;
    empty.hidden = runs.length > 0;
    empty.textContent = store.get().q ? 'No run matches the filter.' : 'No runs in this project yet.';
  }

  /** The dialog of one run's actions; a delete asks again before it is sent. */
  function openActions(run) {
    const name = h('input', { type: 'text', value: run.name, dataset: { testid: 'run-name-input' } });
    const tags = h('input', { type: 'text', value: (run.tags || []).join(', '), placeholder: 'baseline, lr-sweep', dataset: { testid: 'run-tags-input' } });
    const note = h('textarea', { dataset: { testid: 'run-note-input' } });
    note.value = run.note || '';
    const archived = h('input', { type: 'checkbox', checked: !!run.archived, dataset: { testid: 'run-archive-input' } });
    const error = h('div', { class: 'error', hidden: true, dataset: { testid: 'run-dialog-error' } });
    const dialog = h('dialog', { class: 'run-dialog', dataset: { testid: 'run-dialog' } });
    const close = () => {
      dialog.close();
      dialog.remove();
    };
    const fail = (e) => {
      error.hidden = false;
      error.textContent = e.message;
    };
    const save = async () => {
      const body = {
        tags: tags.value.split(',').map((t) => t.trim()).filter(Boolean),
        note: note.value,
        archived: archived.checked,
      };
      if (name.value.trim() !== run.name) body.name = name.value.trim();
      try {
        await runRequest('PATCH', run.run_id, body);
        close();
        load();
      } catch (e) {
        fail(e);
      }
    };
    const confirmDelete = () => {
      dialog.replaceChildren(
        h('h3', {}, 'Delete this run?'),
        h('p', {}, 'Run ', h('b', {}, run.name), ` (${run.run_id}) and every point it holds will be removed for good. This cannot be undone.`),
        error,
        h(
          'div',
          { class: 'row' },
          h('span', { class: 'grow' }),
          h('button', { onclick: close, dataset: { testid: 'cancel-delete' } }, 'Cancel'),
          h('button', { class: 'danger', onclick: remove, dataset: { testid: 'confirm-delete' } }, 'Delete for good'),
        ),
      );
    };
    const remove = async () => {
      try {
        await runRequest('DELETE', run.run_id);
        close();
        const sel = store.get().runs;
        if (Array.isArray(sel)) store.set({ runs: sel.filter((id) => id !== run.run_id) });
        load();
      } catch (e) {
        fail(e);
      }
    };
    dialog.append(
      h('h3', {}, 'Run ', h('code', {}, run.run_id)),
      h('label', {}, 'Name'),
      name,
      h('label', {}, 'Tags (separated by commas)'),
      tags,
      h('label', {}, 'Note'),
      note,
      h('label', {}, archived, ' archived (hidden from this list unless "archived" is ticked)'),
      error,
      h(
        'div',
        { class: 'row' },
        h('button', { class: 'danger', onclick: confirmDelete, dataset: { testid: 'run-delete' } }, 'Delete…'),
        h('span', { class: 'grow' }),
        h('button', { onclick: close, dataset: { testid: 'run-cancel' } }, 'Cancel'),
        h('button', { onclick: save, dataset: { testid: 'run-save' } }, 'Save'),
      ),
    );
    dialog.addEventListener('close', () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
  }

  store.subscribe((state, changed) => {
    if (changed.has('q') && filter.value.trim() !== state.q) filter.value = state.q;
    if (changed.has('archived') && archivedBox.checked !== state.archived) archivedBox.checked = state.archived;
    if (changed.has('project') || changed.has('q') || changed.has('archived')) load();
    else if (changed.has('runs')) {
      render();
      onChange();
    }
  });

  return {
    load,
    /** Listed runs that are selected, in table order. */
    displayedRuns() {
      const sel = selected();
      return sortedRuns().filter((r) => sel.has(r.run_id));
    },
    colors: () => colors,
    configKeys: () => configKeys,
    runs: () => runs,
    hasRunning: () => runs.some((r) => r.status === 'running'),
    showNoProject() {
      empty.hidden = false;
      empty.replaceChildren(
        'No runs yet. Log from a training job with ',
        h('code', {}, 'runstream.init(project=...)'),
        ', or stream demo runs with ',
        h('code', {}, 'runstream demo'),
        '. They show up here as they start.',
      );
    },
  };
}

/** PATCH or DELETE /api/runs/ID; throws an Error with the server's message (e.g. a missing admin scope). */
async function runRequest(method, runId, body) {
  const res = await fetch(`/api/runs/${encodeURIComponent(runId)}`, {
    method,
    headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  try {
    json = await res.json();
  } catch {
    json = null;
  }
  if (!res.ok) throw new Error((json && json.error) || `${method} failed: HTTP ${res.status}`);
  return json;
}
