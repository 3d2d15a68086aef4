/** Live metric points of the running runs in view: one `wanllm/ws/metrics/<id>` socket each, opened and closed as rows scroll. */

import type { ServerConnection } from '@jupyterlab/services';

import { LiveSequence } from '../shared/liveSeq';
import { LiveSocket } from './socket';

interface MetricsMessage {
  type: string;
  run_id?: string;
  seq?: unknown;
  points?: Record<string, { values: Array<number | string> }>;
}

export type PointsHandler = (runId: string, values: Array<number | string>) => void;
/** Called when a run's socket (re)connects or reports a gap: points may have been missed. */
export type CatchUpHandler = (runId: string) => void;

export class MetricFeeds {
  private readonly sockets = new Map<string, LiveSocket<MetricsMessage>>();
  private metric: string | null = null;

  constructor(
    private readonly settings: ServerConnection.ISettings,
    private readonly onPoints: PointsHandler,
    private readonly onCatchUp: CatchUpHandler,
    /** At most this many sockets at once (applies from the next sync). */
    public limit = 16
  ) {}

  /** Hold sockets for exactly `runIds` (at most `limit`) streaming `metric`. */
  sync(runIds: readonly string[], metric: string | null): void {
    if (metric !== this.metric) {
      this.closeAll();
      this.metric = metric;
    }
    const wanted = new Set(metric ? runIds.slice(0, this.limit) : []);
    for (const [id, socket] of this.sockets) {
      if (!wanted.has(id)) {
        socket.dispose();
        this.sockets.delete(id);
      }
    }
    for (const id of wanted) {
      if (!this.sockets.has(id)) {
        const socket = new LiveSocket<MetricsMessage>(this.settings, `wanllm/ws/metrics/${encodeURIComponent(id)}`, {
          type: 'subscribe',
          metrics: [metric]
        });
        const seq = new LiveSequence(); // a sequence jump counts as a gap
        socket.message.connect((_, msg) => {
          if (msg.type === 'metrics') {
            const { apply, gap } = seq.metrics(msg.seq);
            const values = apply && metric ? msg.points?.[metric]?.values : undefined;
            if (values?.length) {
              this.onPoints(id, values);
            }
            if (gap) {
              this.onCatchUp(id);
            }
          } else if (msg.type === 'gap') {
            seq.gap(msg.seq);
            this.onCatchUp(id);
          } else if (msg.type === 'run_deleted') {
            seq.reset(); // a run re-created under this id numbers from 1
          }
        });
        socket.statusChanged.connect((_, status) => {
          if (status === 'live') {
            seq.reset();
            this.onCatchUp(id);
          }
        });
        socket.open();
        this.sockets.set(id, socket);
      }
    }
  }

  closeAll(): void {
    for (const socket of this.sockets.values()) {
      socket.dispose();
    }
    this.sockets.clear();
  }
}
