/**
 * Wire types of the wanllm REST/WS API used by the browser code: aliases of the
 * types generated from the served OpenAPI document (`api-types.ts`, written by
 * `scripts/api_contract.py` from the models in `wanllm_jupyter/core/api`).
 */

import type { components } from './api-types';

type Schemas = components['schemas'];

/** A run as the REST API returns it; times are ISO strings or null. The index
 * signature lets the table and the filters read a column by its name. */
export type Run = Schemas['Run'] & { [field: string]: unknown };

export type RunState = Run['state'];

/** Every state once (a state added to the models fails to compile here until listed). */
const STATES: Record<RunState, true> = { running: true, finished: true, failed: true, crashed: true };

export const RUN_STATES = Object.keys(STATES) as readonly RunState[];

export type Project = Schemas['Project'];

/** One message of the `wanllm/ws/runs` socket. */
export type RunSocketMessage = Schemas['RunMessage'] | Schemas['RunDeletedMessage'] | Schemas['GapMessage'];

/** The JSON series response of `GET runs/{id}/metrics/{name}`. */
export type MetricSeries = Schemas['History'];
