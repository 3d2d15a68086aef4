/** The run browser sidebar: a Lumino widget composing its parts over one RunBrowserState. */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { INotebookTracker } from '@jupyterlab/notebook';
import { type ITranslator, nullTranslator, type TranslationBundle } from '@jupyterlab/translation';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import type { RunSocketMessage } from '../shared/types';
import type { RunsApi } from './api';
import { RunControls } from './controls';
import { el } from './dom';
import { emptyView } from './empty_view';
import { ErrorBox } from './error_box';
import { RunHeader } from './header';
import { MetricCells } from './metric_cells';
import { renderRunRow } from './row_view';
import { RunActions } from './run_actions';
import { RunList } from './run_list';
import { RunLoader } from './run_loader';
import { renderSelectionBar } from './selection_bar';
import { DEFAULT_SETTINGS, type RunBrowserSettings } from './settings';
import type { LiveSocket } from './socket';
import { RunBrowserState } from './state';

export class RunBrowserPanel extends Widget {
  readonly state = new RunBrowserState();
  readonly actions: RunActions;
  private settings: RunBrowserSettings = { ...DEFAULT_SETTINGS };
  private readonly trans: TranslationBundle;
  private readonly header: RunHeader;
  private readonly controls: RunControls;
  private readonly errors: ErrorBox;
  private readonly runList: RunList;
  private readonly empty: HTMLElement;
  private readonly selectionBar = el('div', 'jp-wanllm-selbar');
  private readonly loader: RunLoader;
  private readonly cells: MetricCells;
  private clock: ReturnType<typeof setInterval> | null = null;

  constructor(
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    api: RunsApi,
    socket: LiveSocket<RunSocketMessage>,
    translator: ITranslator = nullTranslator
  ) {
    super();
    const trans = (this.trans = translator.load('wanllm_jupyter'));
    this.errors = new ErrorBox(trans);
    this.loader = new RunLoader(api, this.state, {
      projectsChanged: () => this.controls.renderProjects(),
      runsChanged: () => this.render(),
      metricsChanged: (names, chosen) => {
        this.controls.setMetrics(names, chosen);
        this.render();
      },
      runDeleted: id => this.cells.forget(id),
      loaded: () => this.errors.clear(),
      error: error => this.showError(error)
    });
    this.actions = new RunActions(
      app,
      tracker,
      api,
      this.state,
      {
        runUpdated: run => this.loader.apply({ type: 'run', run }),
        runsRemoved: () => {
          this.controls.renderProjects();
          this.render();
        },
        showError: error => this.showError(error),
        kernelName: () => this.settings.kernelName
      },
      trans
    );
    this.header = new RunHeader(trans, () => void this.reload());
    this.controls = new RunControls(this.state, trans, {
      projectChanged: () => void this.loader.loadRuns(),
      viewChanged: () => this.render()
    });
    this.runList = new RunList(
      this.state,
      this.actions,
      this.settings.rowHeight,
      (i, row) => this.renderRow(i, row),
      () => this.renderSelectionBar(),
      trans
    );
    this.empty = emptyView(trans, code => void this.actions.insert(code, false));
    this.addClass('jp-wanllm-RunBrowser');
    // the selection bar goes below the list: appearing on a click, it must not move
    // the rows under the pointer (a double-click's second click would hit another run)
    this.node.append(
      this.header.node,
      this.controls.node,
      this.errors.node,
      this.runList.viewport,
      this.empty,
      this.selectionBar
    );
    socket.message.connect((_, msg) => this.loader.apply(msg));
    socket.statusChanged.connect((_, status) => {
      if (this.header.setStatus(status)) {
        void this.reload(); // events may have been missed while disconnected
      }
    });
    this.header.setStatus(socket.status);
    this.cells = new MetricCells(
      api,
      this.state,
      { cellLoaded: () => this.render(), latestChanged: () => this.runList.list.refresh() },
      this.settings.socketLimit
    );
    this.configure(this.settings);
  }

  /** Apply user settings (schema/run-browser.json); called again whenever they change. */
  configure(settings: RunBrowserSettings): void {
    this.settings = { ...settings };
    this.runList.setRowHeight(settings.rowHeight);
    this.cells.socketLimit = settings.socketLimit;
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
    this.cells.dispose();
    super.dispose();
  }

  /** Reload projects and the current project's runs. */
  reload(): Promise<void> {
    return this.loader.reload();
  }

  showError(error: unknown): void {
    this.errors.show(error);
  }

  /** Re-render everything that depends on the state. */
  render(): void {
    const runs = this.state.visible();
    const total = this.state.runCount;
    this.controls.render(runs.length);
    this.empty.hidden = total > 0;
    const { list, viewport } = this.runList;
    viewport.hidden = total === 0;
    list.setCount(runs.length);
    if (total > 0 && runs.length === 0) {
      viewport.dataset.empty = this.trans.__('No runs match “%1”', this.state.query);
    } else {
      delete viewport.dataset.empty;
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
      renderRunRow(row, run, { state: this.state, loadCell: r => this.cells.load(r.id), trans: this.trans });
    }
  }

  private tick(): void {
    if (this.isVisible && this.state.visible().some(r => r.state === 'running')) {
      this.runList.list.refresh();
    }
    this.syncFeeds();
  }

  /** Stream the chosen metric of the running runs in view (sockets follow the scroll). */
  private syncFeeds(): void {
    const runs = this.state.visible();
    const ids = this.isVisible
      ? this.runList.list
          .renderedIndices()
          .map(i => runs[i])
          .filter(r => r?.state === 'running')
          .map(r => r.id)
      : [];
    this.cells.follow(ids);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.runList.list.update();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this.runList.list.update();
  }
}
