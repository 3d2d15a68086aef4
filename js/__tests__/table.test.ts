import { describe, expect, it } from 'vitest';

import { autoColumns } from '../shared/table';
import { formatTime } from '../shared/values';
import { makeRun } from './fixtures';

describe('autoColumns', () => {
  it('shows the config keys that vary and the numeric summary keys', () => {
    const rows = [
      makeRun({ config: { lr: 0.1, seed: 1, model: { depth: 2 } }, summary: { loss: 0.5, _step: 9, note: 'x' } }),
      makeRun({ config: { lr: 0.01, seed: 1, model: { depth: 4 } }, summary: { loss: 'NaN', acc: 0.9 } }),
      makeRun({ config: { lr: 0.01, seed: 1, extra: true }, summary: {} })
    ];
    expect(autoColumns(rows)).toEqual([
      'config.extra',
      'config.lr',
      'config.model.depth',
      'summary.acc',
      'summary.loss'
    ]);
  });

  it('shows no config column for a single run (nothing varies)', () => {
    expect(autoColumns([makeRun({ config: { lr: 0.1 }, summary: { loss: 1 } })])).toEqual(['summary.loss']);
  });
});

describe('formatTime', () => {
  it('shows seconds', () => {
    const ms = new Date(2026, 10, 28, 4, 5, 7).getTime();
    expect(formatTime(ms)).toBe('2026-11-28 04:05:07');
  });
});
