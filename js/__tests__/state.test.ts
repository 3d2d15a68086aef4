import { describe, expect, it } from 'vitest';

import { RunBrowserState } from '../labextension/state';
import { Selection } from '../shared/selection';
import { availableColumns, tableView } from '../shared/table';
import type { Project } from '../shared/types';
import { makeRun } from './fixtures';

const project = (name: string, last: string): Project => ({ name, run_count: 0, running: 0, last_created_at: last });

function stateWith(...names: string[]): RunBrowserState {
  const state = new RunBrowserState();
  state.setProjects([project('demo', '2026-11-28T04:00:00Z')]);
  state.setRuns(names.map((name, i) => makeRun({ id: `id${i}`, name, created_at: `2026-11-28T04:0${i}:00Z` })));
  return state;
}

describe('RunBrowserState', () => {
  it('picks the most recently active project', () => {
    const state = new RunBrowserState();
    state.setProjects([project('old', '2025-01-01T00:00:00Z'), project('new', '2026-01-01T00:00:00Z')]);
    expect(state.project).toBe('new');
    expect(state.projects.map(p => p.name)).toEqual(['new', 'old']);
  });

  it('lists newest first by default and re-sorts on request', () => {
    const state = stateWith('b', 'c', 'a');
    expect(state.visible().map(r => r.name)).toEqual(['a', 'c', 'b']);
    state.setSort('name', false);
    expect(state.visible().map(r => r.name)).toEqual(['a', 'b', 'c']);
  });

  it('applies pushed runs: updates in place, adds new ones, ignores other projects', () => {
    const state = stateWith('a');
    const running = state.visible()[0];
    expect(state.applyRun({ ...running, state: 'finished' })).toBe(true);
    expect(state.getRun('id0')?.state).toBe('finished');
    expect(state.applyRun(makeRun({ id: 'new', name: 'n', created_at: '2026-11-28T05:00:00Z' }))).toBe(true);
    expect(state.visible().map(r => r.id)).toEqual(['new', 'id0']);
    expect(state.projects[0].run_count).toBe(1);
    expect(state.applyRun(makeRun({ id: 'x', project: 'other' }))).toBe(true); // a new project appears
    expect(state.projects.map(p => p.name)).toEqual(['demo', 'other']);
    expect(state.applyRun(makeRun({ id: 'y', project: 'other' }))).toBe(false);
    expect(state.runCount).toBe(2);
  });

  it('drops the metric cell of a run that stops running', () => {
    const state = new RunBrowserState();
    state.setProjects([project('demo', '2026-11-28T04:00:00Z')]);
    const run = makeRun({ id: 'r', state: 'running' });
    state.setRuns([run]);
    state.setMetric('loss');
    state.setCell('r', { latest: 1, values: [1] });
    state.applyRun({ ...run, state: 'finished' });
    expect(state.cell('r')).toBeUndefined();
  });

  it('filters with the search and keeps the last good filter on a syntax error', () => {
    const state = stateWith('alpha', 'beta');
    state.setQuery('alpha OR beta');
    expect(state.visible()).toHaveLength(2);
    state.setQuery('alpha');
    expect(state.visible().map(r => r.name)).toEqual(['alpha']);
    state.setQuery('alpha OR');
    expect(state.queryError).toMatch(/needs a term after it/);
    expect(state.visible().map(r => r.name)).toEqual(['alpha']);
  });

  it('sorts by the chosen metric with missing values last', () => {
    const state = stateWith('a', 'b', 'c');
    state.setMetric('loss');
    state.setSort('metric', false);
    state.setCell('id0', { latest: 0.5, values: [] });
    state.setCell('id2', { latest: 0.1, values: [] });
    expect(state.visible().map(r => r.name)).toEqual(['c', 'a', 'b']);
  });

  it('selects with replace, toggle and range, and forgets removed runs', () => {
    const state = stateWith('a', 'b', 'c', 'd'); // visible: d c b a
    state.select('id3', 'replace');
    state.select('id1', 'range');
    expect([...state.selected].sort()).toEqual(['id1', 'id2', 'id3']);
    state.select('id2', 'toggle');
    expect(state.selectedRuns().map(r => r.name)).toEqual(['d', 'b']);
    state.removeRun('id1');
    expect(state.selectedRuns().map(r => r.name)).toEqual(['d']);
    state.setRuns([makeRun({ id: 'z' })]);
    expect(state.selected.size).toBe(0);
  });
});

describe('Selection', () => {
  it('falls back to replace when the range anchor is gone', () => {
    const selection = new Selection();
    selection.select('a', 'replace', ['a', 'b', 'c']);
    selection.set(['b']);
    selection.select('c', 'range', ['a', 'b', 'c']);
    expect([...selection.ids]).toEqual(['c']);
  });
});

describe('run table logic', () => {
  const rows = [
    makeRun({ id: '1', name: 'x', config: { lr: 0.1, opt: { name: 'adam' } }, summary: { loss: 2 } }),
    makeRun({ id: '2', name: 'y', config: { lr: 0.01 }, summary: { loss: 1, acc: 0.9 } }),
    makeRun({ id: '3', name: 'z', config: {}, summary: {} })
  ];

  it('offers every flattened config and summary key', () => {
    expect(availableColumns(rows)).toEqual(['config.lr', 'config.opt.name', 'summary.acc', 'summary.loss']);
  });

  it('filters and sorts row indices by any column', () => {
    expect(tableView(rows, () => true, 'summary.loss', false)).toEqual([1, 0, 2]);
    expect(tableView(rows, () => true, 'config.lr', true)).toEqual([0, 1, 2]);
    expect(tableView(rows, r => r.name !== 'x', null, false)).toEqual([1, 2]);
  });
});
