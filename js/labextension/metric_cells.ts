/** The chosen metric of each run in view: loads its cells, streams running runs' points, refetches their series. */

import { wireNumber } from '../shared/values';
import type { RunsApi } from './api';
import { CellLoader } from './cells';
import { MetricFeeds } from './feeds';
import type { RunBrowserState } from './state';

/** A run's series is refetched at most this often while its points stream in. */
const REFETCH_MS = 2000;

/** What changed, for the owner to redraw. */
export interface CellsHandlers {
  /** A run's cell was (re)loaded. */
  cellLoaded(): void;
  /** A running run's latest value changed. */
  latestChanged(): void;
}

export class MetricCells {
  private readonly loader: CellLoader;
  private readonly feeds: MetricFeeds;
  private readonly refetches = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    api: RunsApi,
    private readonly state: RunBrowserState,
    private readonly on: CellsHandlers,
    socketLimit: number
  ) {
    this.loader = new CellLoader(api, (id, metric, cell) => {
      if (this.state.metric === metric) {
        this.state.setCell(id, cell);
        this.on.cellLoaded();
      }
    });
    this.feeds = new MetricFeeds(
      api.settings,
      (id, values) => this.onLivePoints(id, values),
      id => this.scheduleRefetch(id),
      socketLimit
    );
  }

  /** At most this many running runs stream their points (one socket each). */
  set socketLimit(limit: number) {
    this.feeds.limit = limit;
  }

  /** Load run `id`'s cell of the chosen metric (none chosen: nothing). */
  load(id: string): void {
    if (this.state.metric) {
      this.loader.load(id, this.state.metric);
    }
  }

  /** Forget what a deleted run had logged. */
  forget(id: string): void {
    this.loader.forget(id);
  }

  /** Stream the chosen metric of the running runs `ids` (the ones in view). */
  follow(ids: readonly string[]): void {
    this.feeds.sync(ids, this.state.metric);
  }

  dispose(): void {
    this.feeds.closeAll();
    this.refetches.forEach(timer => clearTimeout(timer));
  }

  /** New points pushed for a running run: show the latest now, refresh its sparkline at most every 2 s. */
  private onLivePoints(id: string, values: Array<number | string>): void {
    const cell = this.state.cell(id);
    if (cell && !cell.error) {
      this.state.setCell(id, { ...cell, empty: false, latest: wireNumber(values[values.length - 1]) ?? NaN });
      this.on.latestChanged();
    }
    this.scheduleRefetch(id);
  }

  /** Refetch a run's series soon (coalesced: at most one per run every REFETCH_MS). */
  private scheduleRefetch(id: string): void {
    if (!this.refetches.has(id)) {
      this.refetches.set(
        id,
        setTimeout(() => {
          this.refetches.delete(id);
          if (this.state.getRun(id)) {
            this.load(id);
          }
        }, REFETCH_MS)
      );
    }
  }
}
