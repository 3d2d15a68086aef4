/** Loads projects, runs and metric names into the run browser's state, and applies the live socket's messages. */

import type { RunSocketMessage } from '../shared/types';
import type { RunsApi } from './api';
import type { RunBrowserState } from './state';

/** The reads the loader makes (RunsApi's). */
export type RunSource = Pick<RunsApi, 'projects' | 'runs' | 'projectMetricNames'>;

/** A run of another project arrives: the projects' run counts are reloaded this much later. */
const PROJECTS_REFRESH_MS = 1000;

/** What changed, for the owner to redraw. */
export interface LoaderHandlers {
  projectsChanged(): void;
  runsChanged(): void;
  /** The project's metric `names` were read; `chosen` is now the state's metric. */
  metricsChanged(names: string[], chosen: string | null): void;
  runDeleted(id: string): void;
  /** The runs loaded: any error shown is stale. */
  loaded(): void;
  error(error: unknown): void;
}

export class RunLoader {
  private metricNames: string[] = [];
  private loadSeq = 0;
  private projectsTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly api: RunSource,
    private readonly state: RunBrowserState,
    private readonly on: LoaderHandlers
  ) {}

  /** Reload projects and the current project's runs. */
  async reload(): Promise<void> {
    try {
      this.state.setProjects(await this.api.projects());
      this.on.projectsChanged();
      await this.loadRuns();
    } catch (error) {
      this.on.error(error);
    }
  }

  /** Load the current project's runs (an answer overtaken by a later load is dropped). */
  async loadRuns(): Promise<void> {
    const project = this.state.project;
    const seq = ++this.loadSeq;
    if (project === null) {
      this.state.setRuns([]);
      this.on.runsChanged();
      return;
    }
    try {
      const runs = await this.api.runs(project);
      if (seq !== this.loadSeq) {
        return;
      }
      this.state.setRuns(runs);
      this.on.loaded();
      this.on.runsChanged();
      await this.loadMetricNames(project);
    } catch (error) {
      this.on.error(error);
    }
  }

  /** Apply a message of the runs socket (also a run changed by this browser's own actions). */
  apply(msg: RunSocketMessage): void {
    if (msg.type === 'run') {
      if (msg.run.project !== this.state.project) {
        this.refreshProjectsSoon(); // its run count: only the server knows whether the run is new
      }
      if (this.state.applyRun(msg.run)) {
        this.on.projectsChanged();
        if (this.metricNames.length === 0 && msg.run.project === this.state.project) {
          void this.loadMetricNames(msg.run.project).catch(error => this.on.error(error));
        }
        this.on.runsChanged();
      }
    } else if (msg.type === 'run_deleted') {
      this.on.runDeleted(msg.run_id);
      if (this.state.getRun(msg.run_id)) {
        this.state.removeRun(msg.run_id);
        this.on.projectsChanged();
        this.on.runsChanged();
      }
    } else if (msg.type === 'gap') {
      void this.reload();
    }
  }

  /** Every metric name of the project's runs; keeps the chosen one, else `loss`, else the first. */
  private async loadMetricNames(project: string): Promise<void> {
    const names = await this.api.projectMetricNames(project);
    if (project !== this.state.project) {
      return;
    }
    this.metricNames = names;
    const current = this.state.metric;
    const chosen = current && names.includes(current) ? current : names.includes('loss') ? 'loss' : (names[0] ?? null);
    this.state.setMetric(chosen);
    this.on.metricsChanged(names, chosen);
  }

  /** Reload the projects (their run counts) once, a second from now. */
  private refreshProjectsSoon(): void {
    if (this.projectsTimer !== null) {
      return;
    }
    this.projectsTimer = setTimeout(() => {
      this.projectsTimer = null;
      this.api
        .projects()
        .then(projects => {
          this.state.setProjects(projects);
          this.on.projectsChanged();
        })
        .catch(error => this.on.error(error));
    }, PROJECTS_REFRESH_MS);
  }
}
