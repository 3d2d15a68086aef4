import { describe, expect, it } from 'vitest';

import { axisMap, formatNumber, nearest, readout, thinLabels } from '../shared/readout';

describe('axisMap', () => {
  it('maps pixels to values and back through the first and last tick', () => {
    const m = axisMap([
      [100, 0],
      [150, 50],
      [300, 200]
    ])!;
    expect(m.toValue(200)).toBeCloseTo(100);
    expect(m.toPx(50)).toBeCloseTo(150);
  });
  it('maps a log axis in log space', () => {
    const m = axisMap(
      [
        [0, 1],
        [100, 100]
      ],
      true
    )!;
    expect(m.toValue(50)).toBeCloseTo(10);
    expect(m.toPx(10)).toBeCloseTo(50);
  });
  it('needs two distinct ticks', () => {
    expect(axisMap([[1, 1]])).toBeNull();
    expect(
      axisMap([
        [1, 1],
        [1, 2]
      ])
    ).toBeNull();
  });
});

describe('nearest and readout', () => {
  it('finds the nearest x', () => {
    expect(nearest([0, 10, 20], 14)).toBe(1);
    expect(nearest([0, 10, 20], 16)).toBe(2);
    expect(nearest([0, 10, 20], -5)).toBe(0);
    expect(nearest([], 1)).toBe(-1);
  });
  it('reads every series at x, highest first, leaving out series that do not reach x', () => {
    const rows = readout(
      [
        { label: 'a · loss', color: '#111', x: [0, 1, 2], y: [3, 2, 1] },
        { label: 'b · loss', color: '#222', x: [0, 1, 2], y: [5, 4, null], sx: [0, 1, 2], sy: [5, 4.5, 4] },
        { label: 'short', color: '#333', x: [0], y: [9] }
      ],
      1.2,
      0.1
    );
    expect(rows.map(r => [r.label, r.value, r.smoothed])).toEqual([
      ['b · loss', 4, 4.5],
      ['a · loss', 2, null]
    ]);
  });
});

describe('formatNumber', () => {
  it('formats like the y axes (4 significant digits, no trailing zeros)', () => {
    expect(formatNumber(0.8)).toBe('0.8');
    expect(formatNumber(12345.6)).toBe('12,350');
    expect(formatNumber(0.000012346)).toBe('1.235e-5');
    expect(formatNumber(null)).toBe('NaN');
    expect(formatNumber(-Infinity)).toBe('-Inf');
  });
});

describe('thinLabels', () => {
  it('keeps every k-th label so that none overlap', () => {
    const extents: [number, number][] = [0, 20, 40, 60, 80].map(x => [x, x + 30]);
    expect(thinLabels(extents)).toEqual([true, false, true, false, true]);
    expect(
      thinLabels([
        [0, 10],
        [30, 40]
      ])
    ).toEqual([true, true]);
  });
});
