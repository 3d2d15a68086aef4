import type { Run } from '../shared/types';

/** A run with sensible defaults; override any field. */
export function makeRun(overrides: Partial<Run> = {}): Run {
  return {
    id: 'r-' + Math.random().toString(16).slice(2, 10),
    project: 'demo',
    name: 'run',
    state: 'finished',
    config: {},
    summary: {},
    tags: [],
    notes: '',
    git: { branch: null, commit: null, dirty: null, remote: null },
    host: null,
    metadata: {},
    exit_code: null,
    created_at: '2026-11-28T04:00:00Z',
    updated_at: null,
    heartbeat_at: null,
    finished_at: null,
    ...overrides
  };
}
