/**
 * Each run's cell of the chosen metric (latest value + sparkline series), loaded without
 * ever asking for a series the run has not logged: such a request answers 404, which the
 * browser reports as an error. A run's metric names are asked first, until it has the metric.
 */

import type { MetricCell } from './state';

/** The two reads a cell needs (RunsApi's). */
export interface CellSource {
  runMetricNames(runId: string): Promise<string[]>;
  series(runId: string, metric: string, samples: number): Promise<number[]>;
}

export type CellHandler = (runId: string, metric: string, cell: MetricCell) => void;

export const SPARK_SAMPLES = 64;

export class CellLoader {
  /** Metric names each run is known to have points of (names never lose their points). */
  private readonly known = new Map<string, Set<string>>();
  private readonly pending = new Set<string>();

  constructor(
    private readonly source: CellSource,
    private readonly onCell: CellHandler,
    readonly maxPending = 6
  ) {}

  /** Load `metric` of `runId` unless it is loading already or `maxPending` loads are in flight. */
  load(runId: string, metric: string): void {
    const key = `${runId}\u0000${metric}`;
    if (this.pending.has(key) || this.pending.size >= this.maxPending) {
      return;
    }
    this.pending.add(key);
    void this.read(runId, metric)
      .catch((error): MetricCell => ({ latest: null, values: [], error: (error as Error).message }))
      .then(cell => {
        this.pending.delete(key);
        this.onCell(runId, metric, cell);
      });
  }

  /** Forget what a deleted run had logged (a run re-created under its id starts empty). */
  forget(runId: string): void {
    this.known.delete(runId);
  }

  private async read(runId: string, metric: string): Promise<MetricCell> {
    if (!this.known.get(runId)?.has(metric)) {
      const names = new Set(await this.source.runMetricNames(runId));
      this.known.set(runId, names);
      if (!names.has(metric)) {
        return { latest: null, values: [], empty: true };
      }
    }
    const values = await this.source.series(runId, metric, SPARK_SAMPLES);
    return { latest: values.length ? values[values.length - 1] : null, values };
  }
}
