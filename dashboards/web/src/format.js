// Number and time formatting for tables, legends and axes (pure, no DOM).

const pad = (n) => String(n).padStart(2, '0');

/** A compact number: up to 5 significant digits, exponent for very large or small. */
export function fmtNum(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v !== 'number') return String(v);
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(3).replace(/\.?0+e/, 'e');
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(5)));
}

/** Short labels for step axes: 950, 1.5k, 20k, 1.2M. */
export function fmtStep(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return fmtNum(v);
}

/** Seconds since the epoch -> "HH:MM:SS" (local time). */
export function fmtClock(sec) {
  if (!Number.isFinite(sec)) return '';
  const d = new Date(sec * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Seconds since the epoch -> "YYYY-MM-DD HH:MM" (local time). */
export function fmtDateTime(sec) {
  if (!Number.isFinite(sec)) return '';
  const d = new Date(sec * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Seconds since the epoch -> short form: "HH:MM" today, else "MM-DD HH:MM". */
export function fmtShortTime(sec, now = Date.now() / 1000) {
  if (!Number.isFinite(sec)) return '';
  const d = new Date(sec * 1000);
  const today = new Date(now * 1000);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (d.toDateString() === today.toDateString()) return hm;
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

/** A duration in seconds -> "45s", "3m05s", "2h04m", "3d02h". */
export function fmtDuration(sec) {
  if (!Number.isFinite(sec)) return '';
  const neg = sec < 0;
  let s = Math.abs(sec);
  let out;
  if (s < 60) out = `${Number(s.toPrecision(3))}s`;
  else if (s < 3600) out = `${Math.floor(s / 60)}m${pad(Math.floor(s % 60))}s`;
  else if (s < 86400) out = `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  else out = `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
  return neg ? `-${out}` : out;
}

/** A config value for a table cell. */
export function fmtConfig(v) {
  if (v === undefined) return '';
  if (v === null) return 'null';
  if (typeof v === 'number') return fmtNum(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
