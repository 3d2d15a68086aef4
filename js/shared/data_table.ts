/** The data-table mode of the run table widget (`wl.Table` panels): rows of cells under
 * named columns, a plain-text filter and the sorted view. */

import { formatValue, sortByKey, wireNumber } from './values';

/** One table row: its position in the logged table (`id`) and its cells, in column order. */
export interface DataRow {
  id: string;
  cells: unknown[];
}

/** A cell as text: strings as they are, numbers like the run table's values. */
export function cellText(value: unknown): string {
  return typeof value === 'string' ? value : formatValue(value);
}

/**
 * Rows matching every whitespace-separated term of `query` (case-insensitive): `column:text`
 * looks in that column, a plain term in every cell. An unknown column matches nothing.
 */
export function dataPredicate(query: string, columns: readonly string[]): (row: DataRow) => boolean {
  const terms = query
    .toLowerCase()
    .split(/\s+/)
    .filter(t => t.length > 0)
    .map(term => {
      const colon = term.indexOf(':');
      const index = colon > 0 ? columns.findIndex(c => c.toLowerCase() === term.slice(0, colon)) : -1;
      return index >= 0 ? { index, text: term.slice(colon + 1) } : { index: -1, text: term };
    });
  return row =>
    terms.every(({ index, text }) =>
      index >= 0
        ? cellText(row.cells[index]).toLowerCase().includes(text)
        : row.cells.some(cell => cellText(cell).toLowerCase().includes(text))
    );
}

/** Indices of the rows passing `predicate`, sorted by column `sortIndex` (null: logged order). */
export function dataView(
  rows: readonly DataRow[],
  predicate: (row: DataRow) => boolean,
  sortIndex: number | null,
  descending: boolean
): number[] {
  const indices = rows.map((_, i) => i).filter(i => predicate(rows[i]));
  return sortIndex === null ? indices : sortByKey(indices, i => rows[i].cells[sortIndex], descending);
}

/** True when the column holds numbers (its first present value is one): right-aligned. */
export function numericColumn(rows: readonly DataRow[], index: number): boolean {
  const first = rows.find(r => r.cells[index] !== null && r.cells[index] !== undefined);
  return first !== undefined && wireNumber(first.cells[index]) !== null;
}
