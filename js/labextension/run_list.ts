/** The run browser's list: a virtual list of run rows, with mouse and keyboard selection. */

import type { TranslationBundle } from '@jupyterlab/translation';

import { listKeyAction } from '../shared/list_keys';
import { VirtualList } from '../shared/virtual';
import { el } from './dom';
import type { RunActions } from './run_actions';
import type { RunBrowserState } from './state';

/** A second plain click on a run within this many ms opens it. */
const DOUBLE_CLICK_MS = 500;

export class RunList {
  readonly viewport = el('div', 'jp-wanllm-list');
  readonly list: VirtualList;
  /** The last plain click on a row: a second one on it within DOUBLE_CLICK_MS opens it
   * (a re-rendered row gets no native dblclick: its node changed between the clicks). */
  private lastClick = { id: '', at: 0 };

  /** `renderRow` draws visible run `index` into `row`; `selectionChanged` redraws what shows the selection. */
  constructor(
    private readonly state: RunBrowserState,
    private readonly actions: RunActions,
    private rowHeight: number,
    renderRow: (index: number, row: HTMLElement) => void,
    private readonly selectionChanged: () => void,
    trans: TranslationBundle
  ) {
    const viewport = this.viewport;
    viewport.setAttribute('role', 'listbox');
    viewport.setAttribute('aria-multiselectable', 'true');
    viewport.setAttribute(
      'aria-label',
      trans.__('Runs: arrows move, Shift extends, Space toggles, Enter opens, Delete deletes')
    );
    viewport.tabIndex = 0;
    this.list = new VirtualList(viewport, rowHeight, renderRow, 'jp-wanllm-RunRow');
    viewport.addEventListener('click', event => this.onClick(event));
    viewport.addEventListener('keydown', event => this.onKey(event));
    viewport.addEventListener('contextmenu', event => {
      const id = rowOf(event)?.dataset.id ?? null;
      this.actions.contextRunId = id;
      if (id && !this.state.selected.has(id)) {
        this.state.select(id, 'replace');
        this.redrawSelection();
      }
    });
  }

  setRowHeight(height: number): void {
    this.rowHeight = height;
    this.list.setRowHeight(height);
  }

  private redrawSelection(): void {
    this.list.refresh();
    this.selectionChanged();
  }

  private onClick(event: MouseEvent): void {
    const row = rowOf(event);
    const id = row?.dataset.id;
    if (!row || !id) {
      return;
    }
    const target = event.target as HTMLElement;
    const action = target.closest<HTMLElement>('[data-action]')?.dataset.action;
    if (action === 'workspace') {
      void this.actions.openWorkspace(id);
    } else if (action === 'copy') {
      this.actions.copyId(id);
    } else if (action === 'more') {
      const rect = target.getBoundingClientRect();
      row.dispatchEvent(new MouseEvent('contextmenu', { bubbles: true, clientX: rect.left, clientY: rect.bottom }));
    } else {
      const onCheck = target.classList.contains('jp-wanllm-check');
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
      this.redrawSelection();
    }
  }

  private onKey(event: KeyboardEvent): void {
    const viewport = this.viewport;
    if (event.target !== viewport) {
      return;
    }
    const page = Math.floor(viewport.clientHeight / this.rowHeight);
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
    this.redrawSelection();
  }
}

function rowOf(event: Event): HTMLElement | null {
  return (event.target as HTMLElement).closest<HTMLElement>('.jp-wanllm-RunRow');
}
