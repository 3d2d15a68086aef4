import { describe, expect, it } from 'vitest';

import { CellLoader, type CellSource } from '../labextension/cells';
import type { MetricCell } from '../labextension/state';

/** An in-memory server: runs' series by metric name, recording every request. */
class FakeServer implements CellSource {
  readonly requests: string[] = [];
  constructor(readonly data: Record<string, Record<string, number[]>>) {}

  runMetricNames(runId: string): Promise<string[]> {
    this.requests.push(`names ${runId}`);
    return Promise.resolve(Object.keys(this.data[runId] ?? {}));
  }

  series(runId: string, metric: string): Promise<number[]> {
    this.requests.push(`series ${runId} ${metric}`);
    const values = this.data[runId]?.[metric];
    return values ? Promise.resolve(values) : Promise.reject(new Error(`404: ${metric} of ${runId}`));
  }
}

function loaded(loader: CellLoader, cells: MetricCell[], runId: string, metric: string): Promise<MetricCell> {
  const before = cells.length;
  loader.load(runId, metric);
  return settle(() => cells.length > before).then(() => cells[cells.length - 1]);
}

async function settle(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) {
    await new Promise(r => setTimeout(r, 0));
  }
}

describe('CellLoader', () => {
  it('never asks for a series the run has not logged', async () => {
    const server = new FakeServer({ a: { loss: [3, 2, 1] }, b: {} });
    const cells: MetricCell[] = [];
    const loader = new CellLoader(server, (_id, _metric, cell) => cells.push(cell));
    expect(await loaded(loader, cells, 'b', 'loss')).toEqual({ latest: null, values: [], empty: true });
    expect(server.requests).toEqual(['names b']);
    expect(await loaded(loader, cells, 'a', 'loss')).toEqual({ latest: 1, values: [3, 2, 1] });
    expect(server.requests).toEqual(['names b', 'names a', 'series a loss']);
  });

  it('asks the names again until the metric appears, then only the series', async () => {
    const server = new FakeServer({ r: {} });
    const cells: MetricCell[] = [];
    const loader = new CellLoader(server, (_id, _metric, cell) => cells.push(cell));
    expect((await loaded(loader, cells, 'r', 'loss')).empty).toBe(true);
    server.data.r.loss = [0.5];
    expect(await loaded(loader, cells, 'r', 'loss')).toEqual({ latest: 0.5, values: [0.5] });
    await loaded(loader, cells, 'r', 'loss');
    expect(server.requests).toEqual(['names r', 'names r', 'series r loss', 'series r loss']);
  });

  it('reports a failed read as an error cell and bounds the reads in flight', async () => {
    const server = new FakeServer({});
    server.runMetricNames = () => Promise.reject(new Error('503: store unavailable'));
    const cells: MetricCell[] = [];
    const loader = new CellLoader(server, (_id, _metric, cell) => cells.push(cell), 2);
    loader.load('x', 'loss');
    loader.load('x', 'loss'); // already loading
    loader.load('y', 'loss');
    loader.load('z', 'loss'); // two in flight: dropped
    await settle(() => cells.length === 2);
    await new Promise(r => setTimeout(r, 5));
    expect(cells).toEqual([
      { latest: null, values: [], error: '503: store unavailable' },
      { latest: null, values: [], error: '503: store unavailable' }
    ]);
  });
});
