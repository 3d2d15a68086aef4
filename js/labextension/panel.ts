/** The run browser sidebar: a plain-DOM Lumino widget over RunBrowserState; loads data and follows the live sockets. */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { INotebookTracker } from '@jupyterlab/notebook';
import { type ITranslator, nullTranslator, type TranslationBundle } from '@jupyterlab/translation';
import { caretDownIcon, caretUpIcon, closeIcon, refreshIcon } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { listKeyAction } from '../shared/list_keys';
import type { Run, RunSocketMessage } from '../shared/types';
import { wireNumber } from '../shared/values';
import { VirtualList } from '../shared/virtual';
import type { RunsApi } from './api';
import { CellLoader } from './cells';
import { button, el, iconButton } from './dom';
import { MetricFeeds } from './feeds';
import { renderRunRow } from './row_view';
import { RunActions } from './run_actions';
import { renderSelectionBar } from './selection_bar';
import { DEFAULT_SETTINGS, type RunBrowserSettings } from './settings';
import type { LiveSocket, SocketStatus } from './socket';
import { type MetricCell, RunBrowserState, SORT_KEYS, type SortKey } from './state';

const FIRST_RUN = 'import wanllm_jupyter as wl\nrun = wl.init(project="demo")\nrun.log({"loss": 0.5})';
/** A second plain click on a run within this many ms opens it. */
const DOUBLE_CLICK_MS = 500;

export class RunBrowserPanel extends Widget {
  readonly state = new RunBrowserState();
  readonly actions: RunActions;
  /** The last plain click on a row: a second one on it within DOUBLE_CLICK_MS opens it
   * (a re-rendered row gets no native dblclick: its node changed between the clicks). */
  private lastClick = { id: '', at: 0 };
  private projectsTimer: number | null = null;
  private settings: RunBrowserSettings = { ...DEFAULT_SETTINGS };
  private readonly list: VirtualList;
  private readonly projectSelect = el('select', 'jp-wanllm-select jp-wanllm-project');
  private readonly metricSelect = el('select', 'jp-wanllm-select jp-wanllm-metric');
  private readonly search = el('input', 'jp-wanllm-search');
  private readonly searchError = el('div', 'jp-wanllm-search-error');
  private readonly sortSelect = el('select', 'jp-wanllm-select jp-wanllm-sort');
  private readonly sortDir: HTMLButtonElement;
  private readonly count = el('span', 'jp-wanllm-count');
  private readonly status = el('span', 'jp-wanllm-status');
  private readonly errorBox = el('div', 'jp-wanllm-error');
  private readonly selectionBar = el('div', 'jp-wanllm-selbar');
  private readonly empty = el('div', 'jp-wanllm-empty');
  private readonly controls = el('div', 'jp-wanllm-controls');
  private readonly cells: CellLoader;
  private readonly trans: TranslationBundle;
  private metricNames: string[] = [];
  private loadSeq = 0;
  private clock: ReturnType<typeof setInterval> | null = null;
  private readonly feeds: MetricFeeds;
  private readonly refetches = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    private readonly api: RunsApi,
    socket: LiveSocket<RunSocketMessage>,
    translator: ITranslator = nullTranslator
  ) {
    super();
    const trans = (this.trans = translator.load('wanllm_jupyter'));
    this.actions = new RunActions(
      app,
      tracker,
      api,
      this.state,
      {
        runUpdated: run => this.onSocketMessage({ type: 'run', run }),
        runsRemoved: () => {
          this.renderProjects();
          this.render();
        },
        showError: error => this.showError(error),
        kernelName: () => this.settings.kernelName
      },
      trans
    );
    this.sortDir = iconButton('jp-wanllm-sortdir', caretDownIcon, trans.__('Toggle sort direction'));
    this.addClass('jp-wanllm-RunBrowser');
    this.node.append(this.buildHeader(), this.buildControls(), this.errorBox);
    const viewport = el('div', 'jp-wanllm-list');
    viewport.setAttribute('role', 'listbox');
    viewport.setAttribute('aria-multiselectable', 'true');
    viewport.setAttribute(
      'aria-label',
      trans.__('Runs: arrows move, Shift extends, Space toggles, Enter opens, Delete deletes')
    );
    viewport.tabIndex = 0;
    // the selection bar goes below the list: appearing on a click, it must not move
    // the rows under the pointer (a double-click's second click would hit another run)
    this.node.append(viewport, this.empty, this.selectionBar);
    this.list = new VirtualList(
      viewport,
      this.settings.rowHeight,
      (i, row) => this.renderRow(i, row),
      'jp-wanllm-RunRow'
    );
    this.bindList(viewport);
    this.buildEmpty();
    socket.message.connect((_, msg) => this.onSocketMessage(msg));
    socket.statusChanged.connect((_, status) => this.onSocketStatus(status));
    this.onSocketStatus(socket.status);
    this.cells = new CellLoader(api, (id, metric, cell) => this.onCell(id, metric, cell));
    this.feeds = new MetricFeeds(
      api.settings,
      (id, values) => this.onLivePoints(id, values),
      id => this.scheduleRefetch(id),
      this.settings.socketLimit
    );
    this.configure(this.settings);
    this.errorBox.hidden = true;
  }

  /** Apply user settings (schema/run-browser.json); called again whenever they change. */
  configure(settings: RunBrowserSettings): void {
    this.settings = { ...settings };
    this.list.setRowHeight(settings.rowHeight);
    this.feeds.limit = settings.socketLimit;
    if (this.clock !== null) {
      clearInterval(this.clock);
    }
    this.clock = setInterval(() => this.tick(), settings.refreshInterval);
    this.syncFeeds();
  }

  dispose(): void {
    if (this.clock !== null) {
      clearInterval(this.clock);
    }
    this.feeds.closeAll();
    this.refetches.forEach(timer => clearTimeout(timer));
    super.dispose();
  }

  // ------------------------------------------------------------------ layout
  private buildHeader(): HTMLElement {
    const header = el('div', 'jp-wanllm-header');
    const refresh = iconButton('jp-wanllm-refresh', refreshIcon, this.trans.__('Reload projects and runs'));
    refresh.addEventListener('click', () => void this.reload());
    header.append(el('span', 'jp-wanllm-title', this.trans.__('Runs')), this.status, refresh);
    return header;
  }

  private buildControls(): HTMLElement {
    const trans = this.trans;
    const controls = this.controls;
    this.projectSelect.title = trans.__('Project');
    this.projectSelect.addEventListener('change', () => {
      this.state.setProject(this.projectSelect.value);
      void this.loadRuns();
    });
    this.metricSelect.title = trans.__('Metric shown per run');
    this.metricSelect.addEventListener('change', () => {
      this.state.setMetric(this.metricSelect.value || null);
      this.render();
    });
    this.search.type = 'search';
    this.search.placeholder = trans.__('Search: name, tag:x, config.lr>=0.01 OR …');
    this.search.spellcheck = false;
    this.search.addEventListener('input', () => {
      this.state.setQuery(this.search.value);
      this.render();
    });
    const labels: Record<SortKey, string> = {
      created: trans.__('Created'),
      name: trans.__('Name'),
      state: trans.__('State'),
      duration: trans.__('Duration'),
      metric: trans.__('Metric value')
    };
    for (const key of SORT_KEYS) {
      const option = el('option', '', labels[key]);
      option.value = key;
      this.sortSelect.append(option);
    }
    this.sortSelect.title = trans.__('Sort runs by');
    this.sortSelect.addEventListener('change', () => this.applySort(this.state.descending));
    this.sortDir.addEventListener('click', () => this.applySort(!this.state.descending));
    const row1 = el('div', 'jp-wanllm-row');
    row1.append(this.projectSelect, this.metricSelect);
    const row2 = el('div', 'jp-wanllm-row');
    row2.append(el('span', 'jp-wanllm-label', trans.__('Sort')), this.sortSelect, this.sortDir, this.count);
    controls.append(row1, this.search, this.searchError, row2);
    return controls;
  }

  private buildEmpty(): void {
    const trans = this.trans;
    const insert = button(
      'jp-wanllm-primary',
      trans.__('Insert into a notebook'),
      trans.__('Insert these lines into the active notebook')
    );
    insert.addEventListener('click', () => void this.actions.insert(FIRST_RUN, false));
    this.empty.append(
      el('div', 'jp-wanllm-empty-title', trans.__('No runs yet')),
      el('p', '', trans.__('Log your first run from any notebook cell:')),
      el('pre', 'jp-wanllm-snippet', FIRST_RUN),
      insert,
      el('p', 'jp-wanllm-hint', trans.__('It shows up here live, with its state, duration and metrics.'))
    );
  }

  private applySort(descending: boolean): void {
    this.state.setSort(this.sortSelect.value as SortKey, descending);
    const icon = descending ? caretDownIcon : caretUpIcon;
    this.sortDir.replaceChildren();
    icon.element({ container: this.sortDir });
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
        const option = el('option', '', name || this.trans.__('no metrics yet'));
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
    const trans = this.trans;
    const labels: Record<SocketStatus, string> = {
      connecting: trans.__('connecting…'),
      live: trans.__('live'),
      reconnecting: trans.__('reconnecting…'),
      closed: trans.__('offline')
    };
    const wasDown = this.status.dataset.status === 'reconnecting';
    this.status.dataset.status = status;
    this.status.textContent = labels[status];
    this.status.title =
      status === 'live'
        ? trans.__('Run states are pushed by the server')
        : trans.__('The live connection is down; retrying with backoff');
    if (status === 'live' && wasDown) {
      void this.reload(); // events may have been missed while disconnected
    }
  }

  // ------------------------------------------------------------------ errors
  showError(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    console.error('wanllm:', error);
    const close = iconButton('jp-wanllm-error-close', closeIcon, this.trans.__('Dismiss'));
    close.addEventListener('click', () => this.clearError());
    this.errorBox.replaceChildren(el('span', 'jp-wanllm-error-text', message), close);
    this.errorBox.hidden = false;
  }

  private clearError(): void {
    this.errorBox.hidden = true;
    this.errorBox.replaceChildren();
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
  private runs(n: number): string {
    return this.trans._n('%1 run', '%1 runs', n);
  }

  private renderProjects(): void {
    const projects = this.state.projects;
    const labels = projects.map(p => `${p.name} (${p.run_count})`);
    const current = [...this.projectSelect.options].map(o => o.textContent);
    if (labels.join('\n') === current.join('\n') && this.projectSelect.value === (this.state.project ?? '')) {
      return; // unchanged: an open dropdown stays open
    }
    this.projectSelect.title = this.state.project
      ? this.trans.__('Project: %1', this.state.project)
      : this.trans.__('Project');
    this.projectSelect.replaceChildren(
      ...projects.map((p, i) => {
        const option = el('option', '', labels[i]);
        option.title = `${p.name}: ${this.runs(p.run_count)}`;
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
    this.count.textContent =
      runs.length === total ? this.runs(total) : this.trans.__('%1 of %2', runs.length, this.runs(total));
    this.empty.hidden = total > 0;
    this.controls.hidden = total === 0 && this.state.projects.length === 0;
    this.list.viewport.hidden = total === 0;
    this.list.setCount(runs.length);
    if (total > 0 && runs.length === 0) {
      this.list.viewport.dataset.empty = this.trans.__('No runs match “%1”', this.state.query);
    } else {
      delete this.list.viewport.dataset.empty;
    }
    this.renderSelectionBar();
    this.syncFeeds();
  }

  private renderSelectionBar(): void {
    renderSelectionBar(
      this.selectionBar,
      this.state.selected.size,
      this.state.metric !== null,
      this.actions,
      () => {
        this.state.clearSelection();
        this.render();
      },
      this.trans
    );
  }

  private renderRow(index: number, row: HTMLElement): void {
    const run = this.state.visible()[index];
    if (run) {
      renderRunRow(row, run, { state: this.state, loadCell: r => this.fetchCell(r), trans: this.trans });
    }
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
      ? this.list
          .renderedIndices()
          .map(i => runs[i])
          .filter(r => r?.state === 'running')
          .map(r => r.id)
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
        void this.actions.openWorkspace(id);
      } else if (action === 'copy') {
        this.actions.copyId(id);
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
          void this.actions.openWorkspace(id);
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
      this.actions.contextRunId = id;
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
    const page = Math.floor(viewport.clientHeight / this.settings.rowHeight);
    const action = listKeyAction(event, this.state.focusIndex(), this.state.visible().length, page);
    if (!action) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    this.actions.contextRunId = null;
    if (action.kind === 'open') {
      void this.actions.openWorkspace(this.state.focusId ?? undefined);
    } else if (action.kind === 'delete') {
      void this.actions.deleteRuns();
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
