/** The run browser's state, free of DOM and network: runs, search, sort, selection, metric cells. */

import { compileSearch, type RunPredicate, SearchSyntaxError } from '../shared/search';
import { applyListKey, type ListKeyAction } from '../shared/list_keys';
import { Selection, type SelectMode } from '../shared/selection';
import type { Project, Run } from '../shared/types';
import { parseTime, runDuration, sortByKey } from '../shared/values';

export type SortKey = 'created' | 'name' | 'state' | 'duration' | 'metric';
export const SORT_KEYS: readonly SortKey[] = ['created', 'name', 'state', 'duration', 'metric'];

/** The chosen metric of one run: its latest value and a downsampled series. */
export interface MetricCell {
  latest: number | null;
  values: number[];
  error?: string;
  /** The run has no points of the metric yet. */
  empty?: boolean;
}

const STATE_ORDER: Record<string, number> = { running: 0, failed: 1, crashed: 2, finished: 3 };

export class RunBrowserState {
  projects: Project[] = [];
  project: string | null = null;
  query = '';
  queryError: string | null = null;
  sortKey: SortKey = 'created';
  descending = true;
  metric: string | null = null;
  private readonly selection = new Selection();
  readonly selected = this.selection.ids;
  private readonly runs = new Map<string, Run>();
  private readonly cells = new Map<string, MetricCell>();
  private predicate: RunPredicate = () => true;
  private cache: Run[] | null = null;

  /** Replace the project list; picks the most recently active project when none is chosen. */
  setProjects(projects: Project[]): void {
    this.projects = [...projects].sort((a, b) => a.name.localeCompare(b.name));
    if (this.project === null || !projects.some(p => p.name === this.project)) {
      const latest = sortByKey(projects, p => parseTime(p.last_created_at), true)[0];
      this.setProject(latest ? latest.name : null);
    }
  }

  /** Show another project: forgets its runs, selection and metric cells. */
  setProject(name: string | null): void {
    if (name === this.project) {
      return;
    }
    this.project = name;
    this.runs.clear();
    this.cells.clear();
    this.selection.clear();
    this.cache = null;
  }

  /** Replace the runs of the current project (after a REST load). */
  setRuns(runs: Run[]): void {
    this.runs.clear();
    for (const run of runs) {
      if (run.project === this.project) {
        this.runs.set(run.id, run);
      }
    }
    this.selection.retain(id => this.runs.has(id));
    this.cache = null;
  }

  /**
   * Apply a run pushed by the server. Returns true when the visible list may
   * have changed. Runs of other projects only update the project list.
   */
  applyRun(run: Run): boolean {
    const known = this.projects.find(p => p.name === run.project);
    const previous = this.runs.get(run.id);
    if (!known) {
      this.projects = [
        ...this.projects,
        { name: run.project, run_count: 1, running: 0, last_created_at: run.created_at }
      ].sort((a, b) => a.name.localeCompare(b.name));
    } else if (run.project === this.project && !previous) {
      known.run_count += 1;
    }
    if (this.project === null) {
      this.project = run.project;
    }
    if (run.project !== this.project) {
      return !known;
    }
    if (previous && previous.state !== run.state && previous.state === 'running') {
      this.cells.delete(run.id); // refetch the final values
    }
    this.runs.set(run.id, run);
    this.cache = null;
    return true;
  }

  /** Forget a deleted run. */
  removeRun(id: string): void {
    if (this.runs.delete(id)) {
      this.selected.delete(id);
      this.cells.delete(id);
      const project = this.projects.find(p => p.name === this.project);
      if (project) {
        project.run_count = Math.max(0, project.run_count - 1);
      }
      this.cache = null;
    }
  }

  getRun(id: string): Run | undefined {
    return this.runs.get(id);
  }

  get runCount(): number {
    return this.runs.size;
  }

  /** Set the search query; on a syntax error the previous filter stays and the error is kept. */
  setQuery(query: string): void {
    this.query = query;
    try {
      this.predicate = compileSearch(query);
      this.queryError = null;
    } catch (error) {
      if (!(error instanceof SearchSyntaxError)) {
        throw error;
      }
      this.queryError = error.message;
    }
    this.cache = null;
  }

  setSort(key: SortKey, descending: boolean): void {
    this.sortKey = key;
    this.descending = descending;
    this.cache = null;
  }

  /** Choose the metric shown per run; drops cells of the previous metric. */
  setMetric(name: string | null): void {
    if (name !== this.metric) {
      this.metric = name;
      this.cells.clear();
      this.cache = null;
    }
  }

  cell(id: string): MetricCell | undefined {
    return this.cells.get(id);
  }

  setCell(id: string, cell: MetricCell): void {
    this.cells.set(id, cell);
    if (this.sortKey === 'metric') {
      this.cache = null;
    }
  }

  /** The runs that pass the search, in the chosen order. */
  visible(now: number = Date.now()): Run[] {
    if (this.cache === null) {
      const matching = [...this.runs.values()].filter(this.predicate);
      this.cache = sortByKey(matching, run => this.sortValue(run, now), this.descending);
    }
    return this.cache;
  }

  private sortValue(run: Run, now: number): unknown {
    switch (this.sortKey) {
      case 'created':
        return parseTime(run.created_at);
      case 'name':
        return run.name;
      case 'state':
        return STATE_ORDER[run.state] ?? 9;
      case 'duration':
        return runDuration(run, now);
      case 'metric':
        return this.cells.get(run.id)?.latest ?? null;
    }
  }

  /** Click semantics of a list: replace, ctrl/cmd toggles, shift extends from the anchor. */
  select(id: string, mode: SelectMode): void {
    this.selection.select(
      id,
      mode,
      this.visible().map(r => r.id)
    );
  }

  clearSelection(): void {
    this.selection.clear();
  }

  /** The run last clicked or moved to by keyboard, if still listed. */
  get focusId(): string | null {
    return this.selection.focus;
  }

  /** The focused run's index in the visible list, or -1. */
  focusIndex(): number {
    const id = this.selection.focus;
    return id === null ? -1 : this.visible().findIndex(r => r.id === id);
  }

  /** Apply a list key (move, toggle, all, clear) to the selection; false for open/delete. */
  applyKey(action: ListKeyAction): boolean {
    return applyListKey(
      action,
      this.selection,
      this.visible().map(r => r.id)
    );
  }

  /** The selected runs, in list order (hidden selected runs last). */
  selectedRuns(): Run[] {
    const shown = this.visible().filter(r => this.selected.has(r.id));
    const hidden = [...this.selected].filter(id => !shown.some(r => r.id === id)).map(id => this.runs.get(id)!);
    return [...shown, ...hidden.filter(Boolean)];
  }
}
