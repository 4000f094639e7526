// The reads of runstream_dashboards/curves_api.py: PR curves, custom-scalar layouts, tag names.
// Errors go to the banner, as the API's other reads do; a tag one of the runs lacks answers null.

import { showError } from './banner.js';

async function getJson(path, params, { signal, missingOk = false } = {}) {
  const url = `${path}?${new URLSearchParams(params)}`;
  const reply = await fetch(url, { headers: { accept: 'application/json' }, signal });
  const body = await reply.json().catch(() => null);
  if (!reply.ok) {
    if (missingOk && reply.status === 404) return null;
    const err = new Error((body && body.error) || `${reply.status} ${reply.statusText}`);
    err.status = reply.status;
    err.route = `GET ${path}`;
    showError(err);
    throw err;
  }
  return body;
}

/** {tag, series: [{run_id, steps, step, thresholds, precision, recall, true_positives, ...}]}; step null: each run's last. */
export const getPrCurves = (runIds, tag, step, opts = {}) =>
  getJson('/api/pr_curves', { runs: runIds.join(','), tag, ...(step === null ? {} : { step }) }, { ...opts, missingOk: true });

/** {layouts: [{run_id, layout}]}: the custom-scalar layouts of those runs. */
export const getCustomScalars = (runIds, opts = {}) => getJson('/api/custom_scalars', { runs: runIds.join(',') }, opts);

/** {tags: {tag: {display_name, description}}}: what the writers said of those runs' tags. */
export const getTagInfo = (runIds, opts = {}) => getJson('/api/tag_info', { runs: runIds.join(',') }, opts);

const tagInfoCache = { key: '', promise: null };

/**
 * The tag names of the displayed runs, shared by the tabs: asked once per set of runs (and again
 * after `forget`, on live updates). Never throws: an error leaves the tags' own names.
 */
export function tagInfoFor(runIds) {
  const key = [...runIds].sort().join(',');
  if (!key) return Promise.resolve({});
  if (tagInfoCache.key !== key || !tagInfoCache.promise) {
    tagInfoCache.key = key;
    tagInfoCache.promise = getTagInfo(runIds).then(
      (r) => (r && r.tags) || {},
      () => ({}),
    );
  }
  return tagInfoCache.promise;
}

/** Live data arrived: ask for the tag names again next time. */
export function forgetTagInfo() {
  tagInfoCache.promise = null;
}
