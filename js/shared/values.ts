/** Reading, comparing and formatting run values (shared by the sidebar and the run table). */

import type { Run } from './types';

/** Parse a JSON-wire number: numbers, and the strings "NaN", "Infinity", "-Infinity". */
export function wireNumber(value: unknown): number | null {
  if (typeof value === 'number') {
    return value;
  }
  if (value === 'NaN') {
    return NaN;
  }
  if (value === 'Infinity') {
    return Infinity;
  }
  if (value === '-Infinity') {
    return -Infinity;
  }
  return null;
}

/** Look up `a.b.c` in a nested record; a literal dotted key wins over nesting. */
export function getPath(record: Record<string, unknown> | undefined, path: string): unknown {
  if (!record) {
    return undefined;
  }
  if (path in record) {
    return record[path];
  }
  const dot = path.indexOf('.');
  if (dot < 0) {
    return undefined;
  }
  const head = record[path.slice(0, dot)];
  if (head && typeof head === 'object' && !Array.isArray(head)) {
    return getPath(head as Record<string, unknown>, path.slice(dot + 1));
  }
  return undefined;
}

/** Milliseconds since the epoch of an ISO time, or null. */
export function parseTime(iso: string | null | undefined): number | null {
  if (!iso) {
    return null;
  }
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

/** Seconds a run has lasted: until `finished_at`, or until `now` while running. */
export function runDuration(run: Run, now: number = Date.now()): number | null {
  const start = parseTime(run.created_at);
  if (start === null) {
    return null;
  }
  const end =
    parseTime(run.finished_at) ??
    (run.state === 'running' ? now : (parseTime(run.heartbeat_at) ?? parseTime(run.updated_at)));
  return end === null ? null : Math.max(0, (end - start) / 1000);
}

/** The value of a column key of a run: `name`, `state`, `created`, `duration`, `config.x`, `summary.x`... */
export function columnValue(run: Run, key: string, now?: number): unknown {
  if (key === 'created') {
    return parseTime(run.created_at);
  }
  if (key === 'duration') {
    return runDuration(run, now);
  }
  if (key === 'tags') {
    return run.tags.join(', ');
  }
  if (key.startsWith('config.')) {
    return getPath(run.config, key.slice(7));
  }
  if (key.startsWith('summary.')) {
    return getPath(run.summary, key.slice(8));
  }
  return run[key];
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

function rank(value: unknown): number {
  const n = wireNumber(value);
  if (n !== null) {
    return Number.isNaN(n) ? 2 : 0;
  }
  return value === null || value === undefined || value === '' ? 3 : 1;
}

/**
 * Order two cell values: numbers (numerically) before strings (naturally),
 * NaN after those, missing values last.
 */
export function compareValues(a: unknown, b: unknown): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb || ra >= 2) {
    return ra - rb;
  }
  if (ra === 0) {
    return (wireNumber(a) as number) - (wireNumber(b) as number);
  }
  return collator.compare(valueText(a), valueText(b));
}

/** A JSON value as text: a string as it is, anything else as JSON. */
function valueText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Stable sort by a key; missing values stay last in both directions. */
export function sortByKey<T>(items: readonly T[], key: (item: T) => unknown, descending: boolean): T[] {
  const keyed = items.map((item, index) => ({ item, index, value: key(item) }));
  keyed.sort((x, y) => {
    const missing = rank(x.value) - rank(y.value);
    if (rank(x.value) >= 2 || rank(y.value) >= 2) {
      return missing || x.index - y.index;
    }
    const order = compareValues(x.value, y.value);
    return (descending ? -order : order) || x.index - y.index;
  });
  return keyed.map(k => k.item);
}

/** Compact duration: `0.4s`, `9.9s`, `42s`, `3m 05s`, `1h 02m`, `2d 03h`. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) {
    return '–';
  }
  if (seconds < 10) {
    return `${(Math.floor(Math.max(0, seconds) * 10) / 10).toFixed(1)}s`;
  }
  const s = Math.floor(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) {
    return `${s}s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  }
  return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** A metric or config value for display: 4 significant digits, NaN/±Inf spelled out. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) {
    return '–';
  }
  const n = wireNumber(value);
  if (n !== null) {
    if (!Number.isFinite(n)) {
      return Number.isNaN(n) ? 'NaN' : n > 0 ? '∞' : '−∞';
    }
    if (Number.isInteger(n) && Math.abs(n) < 1e6) {
      return String(n);
    }
    const abs = Math.abs(n);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? n.toExponential(2) : String(Number(n.toPrecision(4)));
  }
  return valueText(value);
}

/** `2026-11-28 04:00:07` in local time, or `–`. */
export function formatTime(ms: number | null): string {
  if (ms === null) {
    return '–';
  }
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
