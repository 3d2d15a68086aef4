/** The run table's pure logic: columns on offer, and the filtered, sorted view. */

import type { RunPredicate } from './search';
import type { Run } from './types';
import { columnValue, sortByKey } from './values';

export const BASE_COLUMNS = ['name', 'state', 'created', 'duration', 'tags'] as const;

function flatKeys(record: Record<string, unknown> | undefined, prefix: string, out: Set<string>): void {
  for (const [key, value] of Object.entries(record ?? {})) {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      flatKeys(value as Record<string, unknown>, `${prefix}${key}.`, out);
    } else {
      out.add(`${prefix}${key}`);
    }
  }
}

/** Every `config.*` and `summary.*` key present in some row (nested keys joined with dots), sorted. */
export function availableColumns(rows: readonly Run[]): string[] {
  const keys = new Set<string>();
  for (const row of rows) {
    flatKeys(row.config, 'config.', keys);
    flatKeys(row.summary, 'summary.', keys);
  }
  return [...keys].sort();
}

const MAX_AUTO = 6;

/**
 * The columns a table shows by default, as W&B does: the `config.*` keys whose
 * values differ across `rows` (or are missing in some), then the numeric
 * `summary.*` keys (the key metrics; `_`-prefixed ones left out), at most six each.
 */
export function autoColumns(rows: readonly Run[]): string[] {
  const keys = availableColumns(rows);
  const config = keys.filter(key => {
    if (!key.startsWith('config.') || rows.length < 2) {
      return false;
    }
    const seen = new Set(rows.map(r => JSON.stringify(columnValue(r, key) ?? null)));
    return seen.size > 1;
  });
  const summary = keys.filter(
    key =>
      key.startsWith('summary.') &&
      !key.slice(8).startsWith('_') &&
      rows.some(r => {
        const v = columnValue(r, key);
        return typeof v === 'number' || v === 'NaN' || v === 'Infinity' || v === '-Infinity';
      })
  );
  return [...config.slice(0, MAX_AUTO), ...summary.slice(0, MAX_AUTO)];
}

/** Row indices that pass `predicate`, ordered by column `sortKey` (null keeps input order). */
export function tableView(
  rows: readonly Run[],
  predicate: RunPredicate,
  sortKey: string | null,
  descending: boolean,
  now: number = Date.now()
): number[] {
  const indices = rows.map((_, i) => i).filter(i => predicate(rows[i]));
  return sortKey === null ? indices : sortByKey(indices, i => columnValue(rows[i], sortKey, now), descending);
}
