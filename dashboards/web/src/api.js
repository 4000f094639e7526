// Fetch wrappers for the HTTP API (see README "HTTP API").
//
// Every failure becomes an ApiError carrying the server's message ({"error", "status"}), is
// handed to the error sink (the page's banner) and is thrown to the caller. Aborted requests
// (a newer request replaced them) throw an AbortError and are not reported.

import { counters } from './debug.js';

export class ApiError extends Error {
  constructor(message, status, route) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.route = route;
    this.reported = false;
  }
}

let sink = (err) => console.error(err);

/** Where errors go (the banner). */
export function onApiError(fn) {
  sink = fn;
}

export const isAbort = (e) => e && e.name === 'AbortError';

function report(err, quiet) {
  if (!quiet) {
    err.reported = true;
    sink(err);
  }
  return err;
}

export function queryString(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.join('&');
}

async function request(path, { params, method = 'GET', body, signal, quiet = false, missingOk = false } = {}) {
  const q = queryString(params);
  const url = q ? `${path}?${q}` : path;
  const route = `${method} ${path}`;
  let res;
  let text;
  try {
    res = await fetch(url, {
      method,
      signal,
      headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    text = await res.text();
  } catch (e) {
    if (isAbort(e)) throw e;
    throw report(new ApiError(`cannot reach the runstream server (${e.message})`, 0, route), quiet);
  }
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    if (missingOk && res.status === 404 && json && json.error) return null;
    const msg = (json && json.error) || text.trim().slice(0, 300) || res.statusText || 'request failed';
    throw report(new ApiError(msg, (json && json.status) || res.status, route), quiet);
  }
  if (json === undefined) {
    throw report(new ApiError(`the server answered ${res.status} with a body that is not JSON`, res.status, route), quiet);
  }
  return json;
}

export const getProjects = (opts) => request('/api/projects', opts);

/**
 * The runs of a project. The filter text may hold `key=value` words: each becomes a
 * `config.KEY=VALUE` condition; the other words are the `q` text filter.
 */
export function getRuns(project, filter = '', opts = {}) {
  const params = { project };
  const words = [];
  for (const word of String(filter).trim().split(/\s+/)) {
    const m = /^([^=\s]+)=(.*)$/.exec(word);
    if (m) params[`config.${m[1]}`] = m[2];
    else if (word) words.push(word);
  }
  if (words.length) params.q = words.join(' ');
  return request('/api/runs', { ...opts, params });
}

export const getTags = (runIds, opts = {}) => request('/api/tags', { ...opts, params: { runs: runIds.join(',') } });

/** One request for all runs of a tag: {runs: [...], tag, x, x_min?, x_max?, width, bands?}; `bands` asks for the envelope. */
export function getScalars({ runs, tag, x, xMin, xMax, width, bands }, opts = {}) {
  const params = { runs: runs.join(','), tag, x, x_min: xMin, x_max: xMax, width, bands: bands ? 1 : undefined };
  counters.fetches++;
  counters.lastScalarQuery = { ...params, runs: [...runs] };
  return request('/api/scalars', { ...opts, params });
}

/**
 * The runs of a tag grouped by config key `groupBy`, aggregated by the server:
 * {tag, group_by, x, groups: [{label, runs, x, mean, std, min, max, count}]}.
 */
export function getScalarGroups({ runs, tag, groupBy, x, xMin, xMax, width }, opts = {}) {
  const params = { runs: runs.join(','), tag, group_by: groupBy, x, x_min: xMin, x_max: xMax, width };
  counters.fetches++;
  counters.lastScalarQuery = { ...params, runs: [...runs] };
  return request('/api/scalar_groups', { ...opts, params });
}

// Tags are listed for the selected runs together, so one run may lack a tag: a 404 for one
// run and tag answers null (the card says so) instead of an error.
export const getHistograms = (run, tag, limit = 50, opts = {}) =>
  request('/api/histograms', { ...opts, params: { run, tag, limit }, missingOk: true });

export const getImages = (run, tag, opts = {}) => request('/api/images', { ...opts, params: { run, tag }, missingOk: true });
export const getTexts = (run, tag, limit = 50, opts = {}) =>
  request('/api/texts', { ...opts, params: { run, tag, limit }, missingOk: true });

/** Read-only SQL; errors are not sent to the banner (the console shows them itself). */
export const postSQL = (sql, limit = 1000, opts = {}) =>
  request('/api/sql', { ...opts, method: 'POST', body: { sql, limit }, quiet: true });

// Visdom envs (project `visdom`): the list, one env with all its windows, one window. Plotly
// line and scatter traces come M4-downsampled to about `width` columns. A window or env that is
// gone (closed, deleted) answers null.
const seg = encodeURIComponent;
export const getVisdomEnvs = (opts = {}) => request('/api/visdom/envs', opts);
export const getVisdomEnv = (env, width, opts = {}) => request(`/api/visdom/envs/${seg(env)}`, { ...opts, params: { width }, missingOk: true });
export const getVisdomWindow = (env, win, width, opts = {}) =>
  request(`/api/visdom/envs/${seg(env)}/windows/${seg(win)}`, { ...opts, params: { width }, missingOk: true });
