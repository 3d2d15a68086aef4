import { afterEach, describe, expect, it, vi } from 'vitest';

import { RunLoader, type LoaderHandlers, type RunSource } from '../labextension/run_loader';
import { RunBrowserState } from '../labextension/state';
import type { Project, Run } from '../shared/types';
import { makeRun } from './fixtures';

function project(name: string, run_count = 1): Project {
  return { name, run_count, running: 0, last_created_at: '2026-11-28T04:00:00Z' };
}

/** An in-memory server whose answers can be held back, recording every request. */
class FakeServer implements RunSource {
  readonly requests: string[] = [];
  readonly held = new Map<string, () => void>();
  hold = false;
  constructor(
    public projectList: Project[],
    readonly runsOf: Record<string, Run[]>,
    readonly metricsOf: Record<string, string[]>
  ) {}

  projects(): Promise<Project[]> {
    this.requests.push('projects');
    return Promise.resolve(this.projectList);
  }

  runs(name: string): Promise<Run[]> {
    this.requests.push(`runs ${name}`);
    const answer = this.runsOf[name] ?? [];
    if (!this.hold) {
      return Promise.resolve(answer);
    }
    return new Promise(resolve => this.held.set(name, () => resolve(answer)));
  }

  projectMetricNames(name: string): Promise<string[]> {
    this.requests.push(`metrics ${name}`);
    return this.metricsOf[name] ? Promise.resolve(this.metricsOf[name]) : Promise.reject(new Error('500: down'));
  }
}

/** Every handler call, in order. */
function recorder(): LoaderHandlers & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    projectsChanged: () => calls.push('projects'),
    runsChanged: () => calls.push('runs'),
    metricsChanged: (names, chosen) => calls.push(`metrics ${names.join(',')} -> ${chosen}`),
    runDeleted: id => calls.push(`deleted ${id}`),
    loaded: () => calls.push('loaded'),
    error: error => calls.push(`error ${(error as Error).message}`)
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('RunLoader', () => {
  it('loads projects, the chosen project’s runs, then its metric names (loss preferred)', async () => {
    const run = makeRun({ project: 'demo' });
    const server = new FakeServer([project('demo')], { demo: [run] }, { demo: ['acc', 'loss'] });
    const state = new RunBrowserState();
    const on = recorder();
    await new RunLoader(server, state, on).reload();
    expect(server.requests).toEqual(['projects', 'runs demo', 'metrics demo']);
    expect(on.calls).toEqual(['projects', 'loaded', 'runs', 'metrics acc,loss -> loss']);
    expect(state.getRun(run.id)).toEqual(run);
    expect(state.metric).toBe('loss');
  });

  it('keeps the chosen metric while the project still has it', async () => {
    const server = new FakeServer([project('demo')], { demo: [] }, { demo: ['acc', 'loss'] });
    const state = new RunBrowserState();
    state.setMetric('acc');
    const on = recorder();
    await new RunLoader(server, state, on).reload();
    expect(state.metric).toBe('acc');
    expect(on.calls.at(-1)).toBe('metrics acc,loss -> acc');
  });

  it('drops a runs answer overtaken by a later load', async () => {
    const a = makeRun({ project: 'a' });
    const b = makeRun({ project: 'b' });
    const server = new FakeServer([project('a'), project('b')], { a: [a], b: [b] }, { a: [], b: [] });
    const state = new RunBrowserState();
    state.setProjects(server.projectList);
    state.setProject('a');
    const loader = new RunLoader(server, state, recorder());
    server.hold = true;
    const first = loader.loadRuns();
    state.setProject('b');
    const second = loader.loadRuns();
    server.held.get('b')?.();
    await second;
    server.held.get('a')?.();
    await first;
    expect(state.getRun(b.id)).toEqual(b);
    expect(state.getRun(a.id)).toBeUndefined();
    expect(server.requests).toEqual(['runs a', 'runs b', 'metrics b']);
  });

  it('reports a failed read to its handler instead of throwing', async () => {
    const server = new FakeServer([project('demo')], { demo: [] }, {});
    const on = recorder();
    await new RunLoader(server, new RunBrowserState(), on).reload();
    expect(on.calls.at(-1)).toBe('error 500: down');
  });

  it('reloads the projects once, a second later, for a burst of runs of another project', async () => {
    vi.useFakeTimers();
    const server = new FakeServer([project('demo'), project('other')], { demo: [] }, { demo: [] });
    const state = new RunBrowserState();
    state.setProjects(server.projectList);
    state.setProject('demo');
    const on = recorder();
    const loader = new RunLoader(server, state, on);
    for (let i = 0; i < 3; i++) {
      loader.apply({ type: 'run', run: makeRun({ project: 'other' }) });
    }
    expect(server.requests).toEqual([]);
    await vi.advanceTimersByTimeAsync(999);
    expect(server.requests).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(server.requests).toEqual(['projects']);
    expect(on.calls).toEqual(['projects']);
  });

  it('applies a run of the shown project, a deletion, and reloads everything on a gap', async () => {
    const server = new FakeServer([project('demo')], { demo: [] }, { demo: ['loss'] });
    const state = new RunBrowserState();
    state.setProjects(server.projectList);
    state.setProject('demo');
    const on = recorder();
    const loader = new RunLoader(server, state, on);
    const run = makeRun({ project: 'demo', state: 'running' });
    loader.apply({ type: 'run', run });
    expect(state.getRun(run.id)).toEqual(run);
    await vi.waitFor(() => expect(on.calls).toContain('metrics loss -> loss')); // the project's first metric names
    on.calls.length = 0;
    loader.apply({ type: 'run_deleted', run_id: run.id });
    expect(state.getRun(run.id)).toBeUndefined();
    expect(on.calls).toEqual([`deleted ${run.id}`, 'projects', 'runs']);
    server.requests.length = 0;
    loader.apply({ type: 'gap', run_id: null, reason: 'reconnected' });
    await vi.waitFor(() => expect(server.requests).toEqual(['projects', 'runs demo', 'metrics demo']));
  });
});
