import { describe, expect, it } from 'vitest';

import { backoffDelay } from '../shared/backoff';
import { sparklinePath } from '../shared/sparkline';
import {
  columnValue,
  compareValues,
  formatDuration,
  formatValue,
  getPath,
  runDuration,
  sortByKey,
  wireNumber
} from '../shared/values';
import { visibleRange } from '../shared/virtual';
import { makeRun } from './fixtures';

describe('wire values', () => {
  it('decodes the non-finite strings of the JSON wire', () => {
    expect(wireNumber('NaN')).toBeNaN();
    expect(wireNumber('Infinity')).toBe(Infinity);
    expect(wireNumber('-Infinity')).toBe(-Infinity);
    expect(wireNumber(2.5)).toBe(2.5);
    expect(wireNumber('2.5')).toBeNull();
  });

  it('looks up dotted paths, preferring a literal dotted key', () => {
    expect(getPath({ a: { b: { c: 1 } } }, 'a.b.c')).toBe(1);
    expect(getPath({ 'a.b': 2, a: { b: 3 } }, 'a.b')).toBe(2);
    expect(getPath({ a: 1 }, 'a.b')).toBeUndefined();
  });

  it('computes durations for finished and running runs', () => {
    const start = Date.parse('2026-11-28T04:00:00Z');
    expect(runDuration(makeRun({ finished_at: '2026-11-28T04:01:30Z' }))).toBe(90);
    expect(runDuration(makeRun({ state: 'running' }), start + 5000)).toBe(5);
    expect(runDuration(makeRun({ created_at: null }))).toBeNull();
  });

  it('reads table columns', () => {
    const run = makeRun({ tags: ['a', 'b'], config: { lr: 0.1 }, summary: { loss: 'NaN' } });
    expect(columnValue(run, 'config.lr')).toBe(0.1);
    expect(columnValue(run, 'summary.loss')).toBe('NaN');
    expect(columnValue(run, 'tags')).toBe('a, b');
    expect(columnValue(run, 'created')).toBe(Date.parse('2026-11-28T04:00:00Z'));
  });
});

describe('ordering', () => {
  it('puts numbers before strings, NaN after, missing last', () => {
    const values = ['b', null, 'NaN', 10, 'a10', 2, undefined, 'a9'];
    expect([...values].sort(compareValues)).toEqual([2, 10, 'a9', 'a10', 'b', 'NaN', null, undefined]);
  });

  it('sorts stably and keeps missing values last when descending', () => {
    const items = [{ v: 1 }, { v: null }, { v: 3 }, { v: 1 }];
    expect(sortByKey(items, i => i.v, true)).toEqual([{ v: 3 }, { v: 1 }, { v: 1 }, { v: null }]);
    expect(sortByKey(items, i => i.v, false).map(i => i.v)).toEqual([1, 1, 3, null]);
  });
});

describe('formatting', () => {
  it.each([
    [null, '–'],
    [0, '0.0s'],
    [0.42, '0.4s'],
    [5.9, '5.9s'],
    [42.7, '42s'],
    [185, '3m 05s'],
    [3720, '1h 02m'],
    [183600, '2d 03h']
  ])('formats duration %s as %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it.each([
    [0.123456, '0.1235'],
    [42, '42'],
    [0.00001234, '1.23e-5'],
    [12345678.9, '1.23e+7'],
    ['NaN', 'NaN'],
    ['-Infinity', '−∞'],
    [null, '–'],
    ['adam', 'adam']
  ])('formats value %s as %s', (value, text) => {
    expect(formatValue(value)).toBe(text);
  });
});

describe('sparklinePath', () => {
  it('scales the series into the box', () => {
    expect(sparklinePath([0, 1], 10, 10, 0)).toBe('M0.0 10.0L10.0 0.0');
  });

  it('breaks the line at non-finite values', () => {
    expect(sparklinePath([0, NaN, 1], 10, 10, 0)).toBe('M0.0 10.0M10.0 0.0');
  });

  it('draws nothing without finite values and centres a constant series', () => {
    expect(sparklinePath([NaN], 10, 10)).toBe('');
    expect(sparklinePath([3, 3], 10, 10, 0)).toBe('M0.0 5.0L10.0 5.0');
  });
});

describe('backoffDelay', () => {
  it('grows exponentially to the cap, with bounded jitter', () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 10].map(a => backoffDelay(a, 500, 30_000, mid))).toEqual([500, 1000, 2000, 30_000]);
    expect(backoffDelay(0, 500, 30_000, () => 0)).toBe(400);
    expect(backoffDelay(0, 500, 30_000, () => 1)).toBe(600);
  });
});

describe('visibleRange', () => {
  it('covers the viewport plus overscan, clamped to the list', () => {
    expect(visibleRange(0, 100, 20, 1000, 2)).toEqual([0, 7]);
    expect(visibleRange(2000, 100, 20, 1000, 2)).toEqual([98, 107]);
    expect(visibleRange(19_990, 100, 20, 1000, 2)).toEqual([997, 1000]);
    expect(visibleRange(0, 100, 20, 0)).toEqual([0, 0]);
  });

  it('renders a bounded number of rows for 10,000 rows', () => {
    const [start, end] = visibleRange(150_000, 380, 30, 10_000);
    expect(end - start).toBeLessThan(30);
  });
});
