/** The run browser sidebar: a plain-DOM Lumino widget over RunBrowserState. */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import { Clipboard, Dialog, InputDialog, Notification, showDialog } from '@jupyterlab/apputils';
import type { INotebookTracker } from '@jupyterlab/notebook';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { listKeyAction } from '../shared/list_keys';
import { sparklinePath } from '../shared/sparkline';
import type { Run, RunSocketMessage } from '../shared/types';
import { formatDuration, formatValue, runDuration, wireNumber } from '../shared/values';
import { VirtualList } from '../shared/virtual';
import type { RunsApi } from './api';
import { insertCode } from './notebook';
import { compareSnippet, dataFrameSnippet, parseTags, tagChanges, workspaceSnippet } from './snippets';
import { CellLoader } from './cells';
import { MetricFeeds } from './feeds';
import type { LiveSocket, SocketStatus } from './socket';
import { type MetricCell, RunBrowserState, SORT_KEYS, type SortKey } from './state';

const ROW_HEIGHT = 54;
const FIRST_RUN = 'import wanllm_jupyter as wl\nrun = wl.init(project="demo")\nrun.log({"loss": 0.5})';
const SORT_LABELS: Record<SortKey, string> = {
  created: 'Created',
  name: 'Name',
  state: 'State',
  duration: 'Duration',
  metric: 'Metric value'
};
const STATUS_LABELS: Record<SocketStatus, string> = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  closed: 'offline'
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

const DOUBLE_CLICK_MS = 500;

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

function button(className: string, label: string, title: string): HTMLButtonElement {
  const b = el('button', `jp-wanllm-button ${className}`, label);
  b.type = 'button';
  b.title = title;
  return b;
}

export class RunBrowserPanel extends Widget {
  readonly state = new RunBrowserState();
  /** The run a context-menu command applies to (the row right-clicked). */
  contextRunId: string | null = null;
  /** The last plain click on a row: a second one on it within DOUBLE_CLICK_MS opens it
   * (a re-rendered row gets no native dblclick: its node changed between the clicks). */
  private lastClick = { id: '', at: 0 };
  private projectsTimer: number | null = null;
  private readonly list: VirtualList;
  private readonly projectSelect = el('select', 'jp-wanllm-select jp-wanllm-project');
  private readonly metricSelect = el('select', 'jp-wanllm-select jp-wanllm-metric');
  private readonly search = el('input', 'jp-wanllm-search');
  private readonly searchError = el('div', 'jp-wanllm-search-error');
  private readonly sortSelect = el('select', 'jp-wanllm-select jp-wanllm-sort');
  private readonly sortDir = button('jp-wanllm-sortdir', '↓', 'Toggle sort direction');
  private readonly count = el('span', 'jp-wanllm-count');
  private readonly status = el('span', 'jp-wanllm-status');
  private readonly errorBox = el('div', 'jp-wanllm-error');
  private readonly selectionBar = el('div', 'jp-wanllm-selbar');
  private readonly empty = el('div', 'jp-wanllm-empty');
  private readonly controls = el('div', 'jp-wanllm-controls');
  private readonly cells: CellLoader;
  private metricNames: string[] = [];
  private loadSeq = 0;
  private clock: ReturnType<typeof setInterval>;
  private readonly feeds: MetricFeeds;
  private readonly refetches = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly app: JupyterFrontEnd,
    private readonly tracker: INotebookTracker,
    private readonly api: RunsApi,
    socket: LiveSocket<RunSocketMessage>
  ) {
    super();
    this.addClass('jp-wanllm-RunBrowser');
    this.node.append(this.buildHeader(), this.buildControls(), this.errorBox);
    const viewport = el('div', 'jp-wanllm-list');
    viewport.setAttribute('role', 'listbox');
    viewport.setAttribute('aria-multiselectable', 'true');
    viewport.setAttribute('aria-label', 'Runs: arrows move, Shift extends, Space toggles, Enter opens, Delete deletes');
    viewport.tabIndex = 0;
    // the selection bar goes below the list: appearing on a click, it must not move
    // the rows under the pointer (a double-click's second click would hit another run)
    this.node.append(viewport, this.empty, this.selectionBar);
    this.list = new VirtualList(viewport, ROW_HEIGHT, (i, row) => this.renderRow(i, row), 'jp-wanllm-RunRow');
    this.bindList(viewport);
    this.buildEmpty();
    socket.message.connect((_, msg) => this.onSocketMessage(msg));
    socket.statusChanged.connect((_, status) => this.onSocketStatus(status));
    this.onSocketStatus(socket.status);
    this.cells = new CellLoader(api, (id, metric, cell) => this.onCell(id, metric, cell));
    this.feeds = new MetricFeeds(
      api.settings,
      (id, values) => this.onLivePoints(id, values),
      id => this.scheduleRefetch(id)
    );
    this.clock = setInterval(() => this.tick(), 1000);
    this.errorBox.hidden = true;
  }

  dispose(): void {
    clearInterval(this.clock);
    this.feeds.closeAll();
    this.refetches.forEach(timer => clearTimeout(timer));
    super.dispose();
  }

  // ------------------------------------------------------------------ layout
  private buildHeader(): HTMLElement {
    const header = el('div', 'jp-wanllm-header');
    const refresh = button('jp-wanllm-refresh', '⟳', 'Reload projects and runs');
    refresh.addEventListener('click', () => void this.reload());
    header.append(el('span', 'jp-wanllm-title', 'Runs'), this.status, refresh);
    return header;
  }

  private buildControls(): HTMLElement {
    const controls = this.controls;
    this.projectSelect.title = 'Project';
    this.projectSelect.addEventListener('change', () => {
      this.state.setProject(this.projectSelect.value);
      void this.loadRuns();
    });
    this.metricSelect.title = 'Metric shown per run';
    this.metricSelect.addEventListener('change', () => {
      this.state.setMetric(this.metricSelect.value || null);
      this.render();
    });
    this.search.type = 'search';
    this.search.placeholder = 'Search: name, tag:x, config.lr>=0.01 OR …';
    this.search.spellcheck = false;
    this.search.addEventListener('input', () => {
      this.state.setQuery(this.search.value);
      this.render();
    });
    for (const key of SORT_KEYS) {
      const option = el('option', '', SORT_LABELS[key]);
      option.value = key;
      this.sortSelect.append(option);
    }
    this.sortSelect.title = 'Sort runs by';
    this.sortSelect.addEventListener('change', () => this.applySort(this.state.descending));
    this.sortDir.addEventListener('click', () => this.applySort(!this.state.descending));
    const row1 = el('div', 'jp-wanllm-row');
    row1.append(this.projectSelect, this.metricSelect);
    const row2 = el('div', 'jp-wanllm-row');
    row2.append(el('span', 'jp-wanllm-label', 'Sort'), this.sortSelect, this.sortDir, this.count);
    controls.append(row1, this.search, this.searchError, row2);
    return controls;
  }

  private buildEmpty(): void {
    const code = el('pre', 'jp-wanllm-snippet', FIRST_RUN);
    const insert = button('jp-wanllm-primary', 'Insert into a notebook', 'Insert these lines into the active notebook');
    insert.addEventListener('click', () => void this.guard(insertCode(this.app, this.tracker, FIRST_RUN, false)));
    this.empty.append(
      el('div', 'jp-wanllm-empty-title', 'No runs yet'),
      el('p', '', 'Log your first run from any notebook cell:'),
      code,
      insert,
      el('p', 'jp-wanllm-hint', 'It shows up here live, with its state, duration and metrics.')
    );
  }

  private applySort(descending: boolean): void {
    this.state.setSort(this.sortSelect.value as SortKey, descending);
    this.render();
  }

  // ------------------------------------------------------------------ data
  /** Reload projects and the current project's runs. */
  async reload(): Promise<void> {
    try {
      this.state.setProjects(await this.api.projects());
      this.renderProjects();
      await this.loadRuns();
    } catch (error) {
      this.showError(error);
    }
  }

  private async loadRuns(): Promise<void> {
    const project = this.state.project;
    const seq = ++this.loadSeq;
    if (project === null) {
      this.state.setRuns([]);
      this.render();
      return;
    }
    try {
      const runs = await this.api.runs(project);
      if (seq !== this.loadSeq) {
        return;
      }
      this.state.setRuns(runs);
      this.clearError();
      this.render();
      await this.loadMetricNames(project);
    } catch (error) {
      this.showError(error);
    }
  }

  /** Every metric name of the project's runs, into the metric picker. */
  private async loadMetricNames(project: string): Promise<void> {
    const names = await this.api.projectMetricNames(project);
    if (project !== this.state.project) {
      return;
    }
    this.metricNames = names;
    const current = this.state.metric;
    const chosen = current && names.includes(current) ? current : names.includes('loss') ? 'loss' : (names[0] ?? null);
    this.state.setMetric(chosen);
    this.metricSelect.replaceChildren(
      ...(names.length ? names : ['']).map(name => {
        const option = el('option', '', name || 'no metrics yet');
        option.value = name;
        option.selected = name === chosen;
        return option;
      })
    );
    this.render();
  }

  private fetchCell(run: Run): void {
    if (this.state.metric) {
      this.cells.load(run.id, this.state.metric);
    }
  }

  private onCell(runId: string, metric: string, cell: MetricCell): void {
    if (this.state.metric === metric) {
      this.state.setCell(runId, cell);
      this.render();
    }
  }

  private onSocketMessage(msg: RunSocketMessage): void {
    if (msg.type === 'run') {
      if (msg.run.project !== this.state.project) {
        this.refreshProjectsSoon(); // its run count: only the server knows whether the run is new
      }
      if (this.state.applyRun(msg.run)) {
        this.renderProjects();
        if (this.metricNames.length === 0 && msg.run.project === this.state.project) {
          void this.loadMetricNames(msg.run.project).catch(error => this.showError(error));
        }
        this.render();
      }
    } else if (msg.type === 'run_deleted') {
      this.cells.forget(msg.run_id);
      if (this.state.getRun(msg.run_id)) {
        this.state.removeRun(msg.run_id);
        this.renderProjects();
        this.render();
      }
    } else if (msg.type === 'gap') {
      void this.reload();
    }
  }

  private onSocketStatus(status: SocketStatus): void {
    const wasDown = this.status.dataset.status === 'reconnecting';
    this.status.dataset.status = status;
    this.status.textContent = STATUS_LABELS[status];
    this.status.title =
      status === 'live' ? 'Run states are pushed by the server' : 'The live connection is down; retrying with backoff';
    if (status === 'live' && wasDown) {
      void this.reload(); // events may have been missed while disconnected
    }
  }

  // ------------------------------------------------------------------ errors
  showError(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    console.error('wanllm:', error);
    const close = button('jp-wanllm-error-close', '✕', 'Dismiss');
    close.addEventListener('click', () => this.clearError());
    this.errorBox.replaceChildren(el('span', 'jp-wanllm-error-text', message), close);
    this.errorBox.hidden = false;
  }

  private clearError(): void {
    this.errorBox.hidden = true;
    this.errorBox.replaceChildren();
  }

  private async guard(action: Promise<unknown>): Promise<void> {
    try {
      await action;
    } catch (error) {
      this.showError(error);
    }
  }

  /** Reload the projects (their run counts) once, a second from now. */
  private refreshProjectsSoon(): void {
    if (this.projectsTimer !== null) {
      return;
    }
    this.projectsTimer = window.setTimeout(() => {
      this.projectsTimer = null;
      this.api
        .projects()
        .then(projects => {
          this.state.setProjects(projects);
          this.renderProjects();
        })
        .catch(error => this.showError(error));
    }, 1000);
  }

  // ------------------------------------------------------------------ rendering
  private renderProjects(): void {
    const projects = this.state.projects;
    const labels = projects.map(p => `${p.name} (${p.run_count})`);
    const current = [...this.projectSelect.options].map(o => o.textContent);
    if (labels.join('\n') === current.join('\n') && this.projectSelect.value === (this.state.project ?? '')) {
      return; // unchanged: an open dropdown stays open
    }
    this.projectSelect.title = this.state.project ? `Project: ${this.state.project}` : 'Project';
    this.projectSelect.replaceChildren(
      ...projects.map(p => {
        const option = el('option', '', `${p.name} (${p.run_count})`);
        option.title = `${p.name}: ${plural(p.run_count, 'run')}`;
        option.value = p.name;
        option.selected = p.name === this.state.project;
        return option;
      })
    );
    this.projectSelect.disabled = projects.length === 0;
  }

  /** Re-render everything that depends on the state. */
  render(): void {
    const runs = this.state.visible();
    const total = this.state.runCount;
    this.searchError.textContent = this.state.queryError ?? '';
    this.searchError.hidden = !this.state.queryError;
    this.search.classList.toggle('jp-mod-error', !!this.state.queryError);
    this.sortDir.textContent = this.state.descending ? '↓' : '↑';
    this.count.textContent = runs.length === total ? plural(total, 'run') : `${runs.length} of ${plural(total, 'run')}`;
    this.empty.hidden = total > 0;
    this.controls.hidden = total === 0 && this.state.projects.length === 0;
    this.list.viewport.hidden = total === 0;
    this.list.setCount(runs.length);
    if (total > 0 && runs.length === 0) {
      this.list.viewport.dataset.empty = `No runs match “${this.state.query}”`;
    } else {
      delete this.list.viewport.dataset.empty;
    }
    this.renderSelectionBar();
    this.syncFeeds();
  }

  private renderSelectionBar(): void {
    const n = this.state.selected.size;
    this.selectionBar.hidden = n === 0;
    if (n === 0) {
      return;
    }
    const compare = button('jp-wanllm-primary jp-wanllm-compare', 'Compare', 'Insert wl.compare(...) for the selected runs');
    compare.disabled = !this.state.metric;
    compare.addEventListener('click', () => void this.compareSelected());
    const frame = button('jp-wanllm-frame', 'DataFrame', 'Insert a DataFrame of the selected runs');
    frame.addEventListener('click', () => void this.insertDataFrame());
    const tags = button('jp-wanllm-tags', 'Tags', 'Add or remove tags');
    tags.addEventListener('click', () => void this.editTags());
    const del = button('jp-wanllm-danger', 'Delete', 'Delete the selected runs');
    del.addEventListener('click', () => void this.deleteRuns());
    const clear = button('jp-wanllm-clear', '✕', 'Clear the selection');
    clear.addEventListener('click', () => {
      this.state.clearSelection();
      this.render();
    });
    this.selectionBar.replaceChildren(el('span', 'jp-wanllm-selcount', `${n} selected`), clear, compare, frame, tags, del);
  }

  private renderRow(index: number, row: HTMLElement): void {
    const run = this.state.visible()[index];
    if (!run) {
      return;
    }
    row.dataset.id = run.id;
    row.dataset.state = run.state;
    row.setAttribute('role', 'option');
    row.setAttribute('aria-selected', String(this.state.selected.has(run.id)));
    row.classList.toggle('jp-mod-focused', this.state.focusId === run.id);
    row.title = `${run.name}\n${run.id}\nDouble-click to open its workspace`;
    const check = el('input', 'jp-wanllm-check');
    check.type = 'checkbox';
    check.checked = this.state.selected.has(run.id);
    check.tabIndex = -1;
    const badge = el('span', 'wl-state-badge', run.state);
    badge.dataset.state = run.state;
    const name = el('span', 'jp-wanllm-name', run.name);
    const duration = el('span', 'jp-wanllm-duration', formatDuration(runDuration(run)));
    const line1 = el('div', 'jp-wanllm-line');
    line1.append(name, duration);
    const line2 = el('div', 'jp-wanllm-line');
    line2.append(badge, ...run.tags.slice(0, 3).map(t => el('span', 'jp-wanllm-tag', t)));
    if (run.tags.length > 3) {
      line2.append(el('span', 'jp-wanllm-tag jp-wanllm-more', `+${run.tags.length - 3}`));
    }
    const main = el('div', 'jp-wanllm-main');
    main.append(line1, line2);
    const actions = el('div', 'jp-wanllm-actions');
    actions.append(
      button('jp-wanllm-act', '⤢', 'Open workspace'),
      button('jp-wanllm-act', '⧉', 'Copy run id'),
      button('jp-wanllm-act', '⋯', 'More actions')
    );
    const [open, copy, more] = actions.children;
    (open as HTMLElement).dataset.action = 'workspace';
    (copy as HTMLElement).dataset.action = 'copy';
    (more as HTMLElement).dataset.action = 'more';
    row.replaceChildren(check, main, this.metricCell(run), actions);
  }

  private metricCell(run: Run): HTMLElement {
    const cell = el('div', 'jp-wanllm-metric-cell');
    const metric = this.state.metric;
    if (!metric) {
      return cell;
    }
    const data = this.state.cell(run.id);
    if (!data) {
      this.fetchCell(run);
      cell.append(el('span', 'jp-wanllm-value jp-mod-loading', '…'));
      return cell;
    }
    if (data.error) {
      const err = el('span', 'jp-wanllm-value jp-mod-error', '!');
      err.title = data.error;
      cell.append(err);
      return cell;
    }
    if (data.empty) {
      const none = el('span', 'jp-wanllm-value jp-mod-empty', formatValue(null));
      none.title = `No ${metric} points yet`;
      cell.append(none);
      return cell;
    }
    const value = el('span', 'jp-wanllm-value', formatValue(data.latest));
    value.title = `${metric} (latest)`;
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'jp-wanllm-spark');
    svg.setAttribute('viewBox', '0 0 64 20');
    svg.setAttribute('width', '64');
    svg.setAttribute('height', '20');
    const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    path.setAttribute('d', sparklinePath(data.values, 64, 20));
    svg.append(path);
    cell.append(value, svg);
    return cell;
  }

  private tick(): void {
    if (this.isVisible && this.state.visible().some(r => r.state === 'running')) {
      this.list.refresh();
    }
    this.syncFeeds();
  }

  /** Stream the chosen metric of the running runs in view (sockets follow the scroll). */
  private syncFeeds(): void {
    const runs = this.state.visible();
    const ids = this.isVisible
      ? this.list.renderedIndices().map(i => runs[i]).filter(r => r?.state === 'running').map(r => r.id)
      : [];
    this.feeds.sync(ids, this.state.metric);
  }

  /** New points pushed for a running run: show the latest now, refresh its sparkline at most every 2 s. */
  private onLivePoints(id: string, values: Array<number | string>): void {
    const cell = this.state.cell(id);
    if (cell && !cell.error) {
      this.state.setCell(id, { ...cell, empty: false, latest: wireNumber(values[values.length - 1]) ?? NaN });
      this.list.refresh();
    }
    this.scheduleRefetch(id);
  }

  /** Refetch a run's series soon (coalesced: at most one per run every 2 s). */
  private scheduleRefetch(id: string): void {
    if (!this.refetches.has(id)) {
      this.refetches.set(
        id,
        setTimeout(() => {
          this.refetches.delete(id);
          const run = this.state.getRun(id);
          if (run) {
            this.fetchCell(run);
          }
        }, 2000)
      );
    }
  }

  // ------------------------------------------------------------------ interaction
  private bindList(viewport: HTMLElement): void {
    const rowOf = (event: Event) => (event.target as HTMLElement).closest<HTMLElement>('.jp-wanllm-RunRow');
    viewport.addEventListener('click', event => {
      const row = rowOf(event);
      const id = row?.dataset.id;
      if (!id) {
        return;
      }
      const action = (event.target as HTMLElement).closest<HTMLElement>('[data-action]')?.dataset.action;
      if (action === 'workspace') {
        void this.openWorkspace(id);
      } else if (action === 'copy') {
        this.copyId(id);
      } else if (action === 'more') {
        const rect = (event.target as HTMLElement).getBoundingClientRect();
        row.dispatchEvent(new MouseEvent('contextmenu', { bubbles: true, clientX: rect.left, clientY: rect.bottom }));
      } else {
        const onCheck = (event.target as HTMLElement).classList.contains('jp-wanllm-check');
        const toggle = onCheck || event.ctrlKey || event.metaKey;
        const plain = !toggle && !event.shiftKey;
        const now = performance.now();
        if (plain && this.lastClick.id === id && now - this.lastClick.at < DOUBLE_CLICK_MS) {
          this.lastClick = { id: '', at: 0 };
          void this.openWorkspace(id);
          return;
        }
        this.lastClick = plain ? { id, at: now } : { id: '', at: 0 };
        this.state.select(id, event.shiftKey ? 'range' : toggle ? 'toggle' : 'replace');
        this.list.refresh();
        this.renderSelectionBar();
      }
    });
    viewport.addEventListener('keydown', event => this.onListKey(event, viewport));
    viewport.addEventListener('contextmenu', event => {
      const id = rowOf(event)?.dataset.id ?? null;
      this.contextRunId = id;
      if (id && !this.state.selected.has(id)) {
        this.state.select(id, 'replace');
        this.list.refresh();
        this.renderSelectionBar();
      }
    });
  }

  private onListKey(event: KeyboardEvent, viewport: HTMLElement): void {
    if (event.target !== viewport) {
      return;
    }
    const page = Math.floor(viewport.clientHeight / ROW_HEIGHT);
    const action = listKeyAction(event, this.state.focusIndex(), this.state.visible().length, page);
    if (!action) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    this.contextRunId = null;
    if (action.kind === 'open') {
      void this.openWorkspace(this.state.focusId ?? undefined);
    } else if (action.kind === 'delete') {
      void this.deleteRuns();
    } else {
      this.state.applyKey(action);
    }
    const focus = this.state.focusIndex();
    if (focus >= 0) {
      this.list.scrollToRow(focus);
    }
    this.list.refresh();
    this.renderSelectionBar();
  }

  /** The runs an action applies to: the selection when it holds the context run, else that run. */
  targetRuns(): Run[] {
    const selected = this.state.selectedRuns();
    const id = this.contextRunId;
    if (id && !this.state.selected.has(id)) {
      const run = this.state.getRun(id);
      return run ? [run] : [];
    }
    return selected;
  }

  async openWorkspace(id?: string): Promise<void> {
    const runId = id ?? this.targetRuns()[0]?.id;
    if (runId) {
      await this.guard(insertCode(this.app, this.tracker, workspaceSnippet(runId), true));
    }
  }

  async compareSelected(): Promise<void> {
    const runs = this.targetRuns();
    if (runs.length && this.state.metric) {
      await this.guard(insertCode(this.app, this.tracker, compareSnippet(runs.map(r => r.id), this.state.metric), true));
    }
  }

  async insertDataFrame(): Promise<void> {
    if (this.state.project !== null) {
      const ids = this.targetRuns().map(r => r.id);
      await this.guard(insertCode(this.app, this.tracker, dataFrameSnippet(this.state.project, ids), false));
    }
  }

  copyId(id?: string): void {
    const runId = id ?? this.targetRuns()[0]?.id;
    if (runId) {
      Clipboard.copyToSystem(runId);
      Notification.info(`Copied run id ${runId}`, { autoClose: 2000 });
    }
  }

  async rename(): Promise<void> {
    const run = this.targetRuns()[0];
    if (!run) {
      return;
    }
    const result = await InputDialog.getText({ title: 'Rename run', text: run.name, okLabel: 'Rename' });
    const name = result.value?.trim();
    if (result.button.accept && name && name !== run.name) {
      await this.guard(this.api.patchRun(run.id, { name }).then(updated => this.onSocketMessage({ type: 'run', run: updated })));
    }
  }

  async editTags(): Promise<void> {
    const runs = this.targetRuns();
    if (!runs.length) {
      return;
    }
    const common = runs.map(r => r.tags).reduce((a, b) => a.filter(t => b.includes(t)));
    const result = await InputDialog.getText({
      title: runs.length === 1 ? `Tags of ${runs[0].name}` : `Tags of ${runs.length} runs`,
      label: 'Comma-separated tags (remove a tag by deleting it)',
      text: common.join(', '),
      okLabel: 'Save'
    });
    if (!result.button.accept || result.value === null) {
      return;
    }
    const changes = tagChanges(common, parseTags(result.value));
    if (!changes.add_tags.length && !changes.remove_tags.length) {
      return;
    }
    await this.guard(
      Promise.all(runs.map(r => this.api.patchRun(r.id, changes))).then(updated =>
        updated.forEach(run => this.onSocketMessage({ type: 'run', run }))
      )
    );
  }

  async deleteRuns(): Promise<void> {
    const runs = this.targetRuns();
    if (!runs.length) {
      return;
    }
    const what = runs.length === 1 ? `run “${runs[0].name}”` : `${runs.length} runs`;
    const result = await showDialog({
      title: `Delete ${what}?`,
      body: 'Its metrics, config and summary are deleted for good. This cannot be undone.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!result.button.accept) {
      return;
    }
    for (const run of runs) {
      try {
        await this.api.deleteRun(run.id);
        this.state.removeRun(run.id);
      } catch (error) {
        this.showError(error);
        break;
      }
    }
    this.renderProjects();
    this.render();
  }

  // ------------------------------------------------------------------ lifecycle
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.list.update();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this.list.update();
  }
}
