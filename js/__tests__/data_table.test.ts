import { describe, expect, it } from 'vitest';

import { cellText, dataPredicate, type DataRow, dataView, numericColumn } from '../shared/data_table';

const columns = ['label', 'score', 'note'];
const rows: DataRow[] = [
  { id: '0', cells: ['cat', 0.5, 'Blurry'] },
  { id: '1', cells: ['dog', 'NaN', null] },
  { id: '2', cells: ['cat', 2, 'sharp'] }
];

describe('data table', () => {
  it('filters on every cell, or on one column with column:text, case-insensitively', () => {
    const ids = (q: string) => rows.filter(dataPredicate(q, columns)).map(r => r.id);
    expect(ids('')).toEqual(['0', '1', '2']);
    expect(ids('CAT')).toEqual(['0', '2']);
    expect(ids('cat blurry')).toEqual(['0']);
    expect(ids('note:sharp')).toEqual(['2']);
    expect(ids('label:sharp')).toEqual([]);
    expect(ids('nan')).toEqual(['1']);
  });

  it('sorts numbers before NaN and keeps missing values last, or keeps the logged order', () => {
    const all = () => true;
    expect(dataView(rows, all, 1, false)).toEqual([0, 2, 1]);
    expect(dataView(rows, all, 1, true)).toEqual([2, 0, 1]);
    expect(dataView(rows, all, 2, true)).toEqual([2, 0, 1]);
    expect(dataView(rows, all, null, true)).toEqual([0, 1, 2]);
  });

  it('shows strings as they are and numbers like the run table', () => {
    expect(cellText('<b>x</b>')).toBe('<b>x</b>');
    expect(cellText(0.123456)).toBe('0.1235');
    expect(cellText(null)).toBe('–');
    expect(numericColumn(rows, 1)).toBe(true);
    expect(numericColumn(rows, 0)).toBe(false);
  });
});
