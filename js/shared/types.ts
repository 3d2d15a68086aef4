/** Wire types of the wanllm REST/WS API (docs/api.md) used by the browser code. */

export type RunState = 'running' | 'finished' | 'failed' | 'crashed';

export const RUN_STATES: readonly RunState[] = ['running', 'finished', 'failed', 'crashed'];

/** A run as the REST API returns it; times are ISO strings or null. */
export interface Run {
  id: string;
  project: string;
  name: string;
  state: RunState;
  config: Record<string, unknown>;
  summary: Record<string, unknown>;
  tags: string[];
  notes?: string;
  created_at: string | null;
  updated_at?: string | null;
  heartbeat_at?: string | null;
  finished_at?: string | null;
  [extra: string]: unknown;
}

export interface Project {
  name: string;
  run_count: number;
  running: number;
  last_created_at: string | null;
}

/** One message of the `wanllm/ws/runs` socket. */
export type RunSocketMessage =
  | { type: 'run'; run: Run }
  | { type: 'run_deleted'; run_id: string }
  | { type: 'gap'; run_id?: string; reason?: string };

/** The JSON series response of `GET runs/{id}/metrics/{name}`. */
export interface MetricSeries {
  metric_name: string;
  run_id: string;
  steps: number[];
  times: number[];
  values: Array<number | string>;
  sampled: boolean;
  total_points: number;
}
