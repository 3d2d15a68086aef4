/**
 * The run table anywidget: sortable, filterable, virtualised; the row
 * selection is synced to Python as `selected_ids`.
 *
 * Model traits: `rows` (Run dicts), `columns` (extra `config.*`/`summary.*`
 * keys; empty: the config keys that vary and the key metrics, `autoColumns`),
 * `selected_ids`, `query` (the filter box, in the run query language).
 *
 * With `mode` = `'data'` it shows a logged table instead (`wl.Table`, the table
 * panel): `rows` are `{id, cells}` under `columns`, the filter is plain text
 * (`column:text` terms, js/shared/data_table.ts), no column picker.
 */

import type { AnyModel, RenderProps } from '@anywidget/types';

import { cellText as dataCellText, dataPredicate, type DataRow, dataView, numericColumn } from '../shared/data_table';
import { applyListKey, listKeyAction } from '../shared/list_keys';
import { compileSearch, type RunPredicate, SearchSyntaxError } from '../shared/search';
import { type SelectMode, Selection } from '../shared/selection';
import { autoColumns, availableColumns, BASE_COLUMNS, tableView } from '../shared/table';
import type { Run } from '../shared/types';
import { columnValue, formatDuration, formatTime, formatValue, wireNumber } from '../shared/values';
import { VirtualList } from '../shared/virtual';
import './run_table.css';

interface TableModel {
  mode?: 'runs' | 'data';
  rows: Run[] | DataRow[];
  columns: string[];
  selected_ids: string[];
  query: string;
}

const ROW_HEIGHT = 30;
const CHECK_WIDTH = '36px';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

const WIDTHS: Record<string, number> = { name: 142, state: 92, created: 162, duration: 84, tags: 104 };

/** Fixed pixel widths (an extra column: room for its name), so the sticky header and
 * the absolutely placed rows line up. */
function widthOf(column: string): string {
  return `${WIDTHS[column] ?? Math.round(Math.max(100, Math.min(220, 7.5 * column.length + 34)))}px`;
}

/** A logged table's column width: room for its name or its longest text in the first rows. */
function dataWidthOf(rows: readonly DataRow[], column: string, index: number): string {
  const longest = rows.slice(0, 200).reduce((n, r) => Math.max(n, dataCellText(r.cells[index]).length), 0);
  return `${Math.round(Math.max(80, Math.min(320, 7.5 * Math.max(column.length, longest) + 34)))}px`;
}

function cellText(row: Run, column: string, now: number): string {
  const value = columnValue(row, column, now);
  if (column === 'created') {
    return formatTime(value as number | null);
  }
  if (column === 'duration') {
    return formatDuration(value as number | null);
  }
  return column === 'name' || column === 'tags'
    ? String((value as string | string[] | null | undefined) ?? '')
    : formatValue(value);
}

class RunTableView {
  private rows: Run[] = [];
  private readonly data: boolean; // mode 'data': a logged table
  private dataRows: DataRow[] = [];
  private dataFilter: (row: DataRow) => boolean = () => true;
  private view: number[] = [];
  private columns: string[] = [];
  private predicate: RunPredicate = () => true;
  private sortKey: string | null = 'created';
  private descending = true;
  private readonly selection = new Selection();
  private readonly list: VirtualList;
  private readonly header = el('div', 'wl-rt-header');
  private readonly filter = el('input', 'wl-rt-filter');
  private readonly filterError = el('span', 'wl-rt-filter-error');
  private readonly count = el('span', 'wl-rt-count');
  private readonly picker = el('div', 'wl-rt-picker');
  private readonly viewport = el('div', 'wl-rt-viewport');

  constructor(
    private readonly model: AnyModel<TableModel>,
    root: HTMLElement
  ) {
    this.data = this.model.get('mode') === 'data';
    const toolbar = el('div', 'wl-rt-toolbar');
    this.filter.type = 'search';
    this.filter.placeholder = this.data
      ? 'Filter: text, or column:text'
      : 'Filter: name, tag:x, config.lr>=0.01 OR state:failed';
    this.filter.spellcheck = false;
    this.filter.value = this.model.get('query') ?? '';
    this.filter.addEventListener('input', () => {
      this.setFilter(this.filter.value);
      this.model.set('query', this.filter.value);
      this.model.save_changes();
    });
    const columnsButton = el('button', 'wl-rt-button', 'Columns ▾');
    columnsButton.type = 'button';
    columnsButton.addEventListener('click', () => this.togglePicker());
    columnsButton.hidden = this.data;
    toolbar.append(this.filter, columnsButton, this.count);
    this.picker.hidden = true;
    this.viewport.append(this.header);
    this.list = new VirtualList(this.viewport, ROW_HEIGHT, (i, row) => this.renderRow(i, row), 'wl-rt-row');
    this.header.addEventListener('click', event => {
      const key = (event.target as HTMLElement).closest<HTMLElement>('[data-column]')?.dataset.column;
      if (key) {
        this.sortBy(key);
      }
    });
    this.viewport.addEventListener('click', event => this.onRowClick(event));
    this.viewport.addEventListener('keydown', event => this.onKey(event));
    this.viewport.tabIndex = 0;
    this.viewport.setAttribute('role', 'listbox');
    this.viewport.setAttribute('aria-multiselectable', 'true');
    this.viewport.setAttribute('aria-label', 'Runs: arrows move, Shift extends, Space toggles, Ctrl+A selects all');
    root.classList.add('wl-run-table');
    if (this.data) {
      this.sortKey = null; // the logged order
      this.viewport.setAttribute('aria-label', 'Rows: arrows move, Shift extends, Space toggles, Ctrl+A selects all');
    }
    root.append(toolbar, this.filterError, this.picker, this.viewport);
    this.setFilter(this.filter.value);
    this.syncFromModel();
  }

  /** The filter box follows `query` set from Python. */
  syncQuery(): void {
    const query = this.model.get('query') ?? '';
    if (query !== this.filter.value) {
      this.filter.value = query;
      this.setFilter(query);
    }
  }

  /** The chosen extra columns, or by default the varying config keys and key metrics. */
  private extraColumns(): string[] {
    const chosen = this.model.get('columns') ?? [];
    return chosen.length ? chosen : autoColumns(this.rows);
  }

  /** Read rows, columns and selection from the model and re-render. */
  syncFromModel(): void {
    if (this.data) {
      this.dataRows = (this.model.get('rows') ?? []) as DataRow[];
      this.columns = this.model.get('columns') ?? [];
      this.dataFilter = dataPredicate(this.filter.value, this.columns);
      this.selection.set(this.model.get('selected_ids') ?? []);
      this.recompute();
      return;
    }
    this.rows = ((this.model.get('rows') ?? []) as Run[]).map(r => ({
      ...r,
      tags: r.tags ?? [],
      config: r.config ?? {},
      summary: r.summary ?? {}
    }));
    this.columns = [...BASE_COLUMNS, ...this.extraColumns()];
    this.selection.set(this.model.get('selected_ids') ?? []);
    this.recompute();
  }

  syncSelection(): void {
    this.selection.set(this.model.get('selected_ids') ?? []);
    this.list.refresh();
    this.renderCount();
  }

  private setFilter(query: string): void {
    if (this.data) {
      this.dataFilter = dataPredicate(query, this.columns);
      this.recompute();
      return;
    }
    try {
      this.predicate = compileSearch(query);
      this.filterError.textContent = '';
      this.filter.classList.remove('wl-mod-error');
    } catch (error) {
      if (!(error instanceof SearchSyntaxError)) {
        throw error;
      }
      this.filterError.textContent = error.message;
      this.filter.classList.add('wl-mod-error');
    }
    this.recompute();
  }

  private sortBy(key: string): void {
    if (this.sortKey === key) {
      this.descending = !this.descending;
    } else {
      this.sortKey = key;
      this.descending = key === 'created';
    }
    this.recompute();
  }

  private recompute(): void {
    this.view = this.data
      ? dataView(this.dataRows, this.dataFilter, this.sortIndex(), this.descending)
      : tableView(this.rows, this.predicate, this.sortKey, this.descending);
    const widths = this.data
      ? this.columns.map((column, i) => dataWidthOf(this.dataRows, column, i))
      : this.columns.map(widthOf);
    const template = [CHECK_WIDTH, ...widths].join(' ');
    this.viewport.style.setProperty('--wl-rt-columns', template);
    this.renderHeader();
    this.renderCount();
    this.list.setCount(this.view.length);
    const noun = this.data ? 'rows' : 'runs';
    this.viewport.dataset.empty =
      this.total() === 0 ? `No ${noun}` : this.view.length === 0 ? `No ${noun} match the filter` : '';
  }

  private sortIndex(): number | null {
    const index = this.sortKey === null ? -1 : this.columns.indexOf(this.sortKey);
    return index >= 0 ? index : null;
  }

  private total(): number {
    return this.data ? this.dataRows.length : this.rows.length;
  }

  private renderHeader(): void {
    const cells = this.columns.map(column => {
      const cell = el('div', 'wl-rt-th', column);
      const numeric = this.data
        ? numericColumn(this.dataRows, this.columns.indexOf(column))
        : column !== 'name' && column !== 'state' && column !== 'created' && column !== 'tags';
      if (numeric) {
        cell.classList.add('wl-rt-num');
      }
      cell.dataset.column = column;
      cell.title = `Sort by ${column}`;
      if (column === this.sortKey) {
        cell.dataset.sort = this.descending ? 'desc' : 'asc';
        cell.setAttribute('aria-sort', this.descending ? 'descending' : 'ascending');
      }
      return cell;
    });
    this.header.replaceChildren(el('div', 'wl-rt-th wl-rt-check-cell'), ...cells);
  }

  private renderCount(): void {
    const selected = this.selection.ids.size;
    const n = this.total();
    const total = `${n} ${this.data ? 'row' : 'run'}${n === 1 ? '' : 's'}`;
    const shown = this.view.length === n ? total : `${this.view.length} of ${total}`;
    this.count.textContent = selected ? `${shown} · ${selected} selected` : shown;
  }

  private renderRow(index: number, row: HTMLElement): void {
    if (this.data) {
      this.renderDataRow(index, row);
      return;
    }
    const run = this.rows[this.view[index]];
    if (!run) {
      return;
    }
    const now = Date.now();
    const first = this.rowFrame(row, run.id, index);
    const cells = this.columns.map(column => {
      const cell = el('div', `wl-rt-td wl-rt-${column.replace(/\W/g, '-')}`);
      if (column === 'state') {
        const badge = el('span', 'wl-state-badge', run.state);
        badge.dataset.state = run.state;
        cell.append(badge);
      } else {
        cell.textContent = cellText(run, column, now);
        cell.title = cell.textContent;
        if (column === 'duration' || (column !== 'created' && wireNumber(columnValue(run, column, now)) !== null)) {
          cell.classList.add('wl-rt-num');
        }
      }
      return cell;
    });
    row.replaceChildren(first, ...cells);
  }

  /** Mark ``row`` as the one of ``id`` at ``index`` (selection, focus, place);
   * its first cell, the selection checkbox. */
  private rowFrame(row: HTMLElement, id: string, index: number): HTMLElement {
    const selected = this.selection.ids.has(id);
    row.dataset.id = id;
    row.setAttribute('aria-selected', String(selected));
    row.classList.toggle('wl-mod-focused', this.selection.focus === id);
    row.style.top = `${index * ROW_HEIGHT}px`;
    const check = el('input', 'wl-rt-check');
    check.type = 'checkbox';
    check.checked = selected;
    check.tabIndex = -1;
    const first = el('div', 'wl-rt-td wl-rt-check-cell');
    first.append(check);
    return first;
  }

  /** A row of a logged table: every cell as text (`textContent`: inert). */
  private renderDataRow(index: number, row: HTMLElement): void {
    const data = this.dataRows[this.view[index]];
    if (!data) {
      return;
    }
    const first = this.rowFrame(row, data.id, index);
    const cells = this.columns.map((_, i) => {
      const value = data.cells[i];
      const cell = el('div', 'wl-rt-td', dataCellText(value));
      cell.title = cell.textContent ?? '';
      if (wireNumber(value) !== null) {
        cell.classList.add('wl-rt-num');
      }
      return cell;
    });
    row.replaceChildren(first, ...cells);
  }

  private onRowClick(event: MouseEvent): void {
    const row = (event.target as HTMLElement).closest<HTMLElement>('.wl-rt-row');
    const id = row?.dataset.id;
    if (!id) {
      return;
    }
    const isCheck = (event.target as HTMLElement).classList.contains('wl-rt-check');
    const mode: SelectMode = event.shiftKey
      ? 'range'
      : isCheck || event.ctrlKey || event.metaKey
        ? 'toggle'
        : 'replace';
    this.selection.select(id, mode, this.viewIds());
    this.commitSelection();
  }

  private onKey(event: KeyboardEvent): void {
    if (event.target !== this.viewport) {
      return;
    }
    const order = this.viewIds();
    const focus = this.selection.focus === null ? -1 : order.indexOf(this.selection.focus);
    const page = Math.floor(this.viewport.clientHeight / ROW_HEIGHT) - 1;
    const action = listKeyAction(event, focus, order.length, page);
    if (!action || !applyListKey(action, this.selection, order)) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    const moved = this.selection.focus === null ? -1 : order.indexOf(this.selection.focus);
    if (moved >= 0) {
      this.list.scrollToRow(moved);
    }
    this.commitSelection();
  }

  private viewIds(): string[] {
    return this.view.map(i => (this.data ? this.dataRows[i].id : this.rows[i].id));
  }

  /** Send the selection to Python and re-render. */
  private commitSelection(): void {
    this.model.set('selected_ids', [...this.selection.ids]);
    this.model.save_changes();
    this.list.refresh();
    this.renderCount();
  }

  private togglePicker(): void {
    this.picker.hidden = !this.picker.hidden;
    if (this.picker.hidden) {
      return;
    }
    const chosen = new Set(this.extraColumns());
    const options = availableColumns(this.rows);
    if (options.length === 0) {
      this.picker.replaceChildren(el('span', 'wl-rt-muted', 'No config or summary keys in these runs.'));
      return;
    }
    this.picker.replaceChildren(
      ...options.map(key => {
        const label = el('label', 'wl-rt-option');
        const box = el('input');
        box.type = 'checkbox';
        box.checked = chosen.has(key);
        box.addEventListener('change', () => {
          const next = options.filter(k => (k === key ? box.checked : chosen.has(k)));
          chosen.clear();
          next.forEach(k => chosen.add(k));
          this.model.set('columns', next);
          this.model.save_changes();
        });
        label.append(box, document.createTextNode(key));
        return label;
      })
    );
  }
}

function render({ model, el: root }: RenderProps<TableModel>): () => void {
  const view = new RunTableView(model, root);
  const sync = () => view.syncFromModel();
  const syncSelection = () => view.syncSelection();
  model.on('change:rows', sync);
  model.on('change:columns', sync);
  model.on('change:selected_ids', syncSelection);
  const syncQuery = () => view.syncQuery();
  model.on('change:query', syncQuery);
  return () => {
    model.off('change:query', syncQuery);
    model.off('change:rows', sync);
    model.off('change:columns', sync);
    model.off('change:selected_ids', syncSelection);
  };
}

export default { render };
