/** REST client of the wanllm server extension, through JupyterLab's ServerConnection (base_url, token, XSRF). */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { MetricSeries, Project, Run } from '../shared/types';
import { wireNumber } from '../shared/values';

export const API_PREFIX = 'wanllm/api/v1';

/** A request that failed: the server's message (and item errors), or the network failure. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface ErrorBody {
  message?: string;
  errors?: Array<{ index?: number; field?: string; reason?: string }>;
}

async function describeFailure(response: Response, what: string): Promise<string> {
  let detail = `${response.status} ${response.statusText}`.trim();
  try {
    const body = (await response.json()) as ErrorBody;
    if (body.message) {
      detail = `${response.status}: ${body.message}`;
    }
    const items = (body.errors ?? []).map(
      e => `${e.field ?? 'item'}${e.index === undefined ? '' : ` #${e.index}`}: ${e.reason}`
    );
    if (items.length) {
      detail += ` (${items.join('; ')})`;
    }
  } catch {
    // not JSON: keep the status line
  }
  return `${what} failed: ${detail}`;
}

export class RunsApi {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  /** Send one request; resolves with the parsed JSON (null for 204), rejects with ApiError. */
  async request<T>(method: string, path: string, body?: unknown, query?: Record<string, string | number>): Promise<T> {
    let url = URLExt.join(this.settings.baseUrl, API_PREFIX, path);
    if (query) {
      url += URLExt.objectToQueryString(Object.fromEntries(Object.entries(query).map(([k, v]) => [k, String(v)])));
    }
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    const what = `${method} ${path}`;
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new ApiError(`${what} failed: ${(error as Error).message || 'server unreachable'}`, null);
    }
    if (!response.ok) {
      throw new ApiError(await describeFailure(response, what), response.status);
    }
    return response.status === 204 ? (null as T) : ((await response.json()) as T);
  }

  async projects(): Promise<Project[]> {
    return (await this.request<{ projects: Project[] }>('GET', 'projects')).projects;
  }

  /** Every run of a project (follows cursors up to `max`). */
  async runs(project: string, max = 5000): Promise<Run[]> {
    const runs: Run[] = [];
    let cursor: string | null = null;
    do {
      const query: Record<string, string | number> = { project, limit: 1000, sort: '-created_at' };
      if (cursor) {
        query.cursor = cursor;
      }
      const page: { runs: Run[]; next_cursor: string | null } = await this.request('GET', 'runs', undefined, query);
      runs.push(...page.runs);
      cursor = page.next_cursor;
    } while (cursor && runs.length < max);
    return runs;
  }

  /** Every metric name logged in a run of `project`, sorted. */
  async projectMetricNames(project: string): Promise<string[]> {
    const body = await this.request<{ metrics: Array<{ name: string }> }>('GET', 'projects/metric-names', undefined, {
      project
    });
    return body.metrics.map(m => m.name);
  }

  /** The metric names a run has points of. */
  async runMetricNames(runId: string): Promise<string[]> {
    const body = await this.request<{ metrics: Array<{ name: string }> }>(
      'GET',
      `runs/${encodeURIComponent(runId)}/metric-names`
    );
    return body.metrics.map(m => m.name);
  }

  /** A downsampled series of one metric, values as numbers (NaN/±Inf decoded). */
  async series(runId: string, metric: string, samples = 64): Promise<number[]> {
    const body = await this.request<MetricSeries>(
      'GET',
      `runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(metric)}`,
      undefined,
      { samples }
    );
    return body.values.map(v => wireNumber(v) ?? NaN);
  }

  patchRun(runId: string, body: Record<string, unknown>): Promise<Run> {
    return this.request<Run>('PATCH', `runs/${encodeURIComponent(runId)}`, body);
  }

  async deleteRun(runId: string): Promise<void> {
    await this.request<null>('DELETE', `runs/${encodeURIComponent(runId)}`);
  }
}
