/** The run browser's controls: project and metric pickers, the search box, sort order and run count. */

import type { TranslationBundle } from '@jupyterlab/translation';
import { caretDownIcon, caretUpIcon } from '@jupyterlab/ui-components';

import { el, iconButton } from './dom';
import { type RunBrowserState, SORT_KEYS, type SortKey } from './state';

/** What the controls ask of their owner; each is called after the state took the change. */
export interface ControlsHandlers {
  projectChanged(): void;
  /** The metric, query or sort order changed: redraw. */
  viewChanged(): void;
}

export class RunControls {
  readonly node = el('div', 'jp-wanllm-controls');
  private readonly projectSelect = el('select', 'jp-wanllm-select jp-wanllm-project');
  private readonly metricSelect = el('select', 'jp-wanllm-select jp-wanllm-metric');
  private readonly search = el('input', 'jp-wanllm-search');
  private readonly searchError = el('div', 'jp-wanllm-search-error');
  private readonly sortSelect = el('select', 'jp-wanllm-select jp-wanllm-sort');
  private readonly sortDir: HTMLButtonElement;
  private readonly count = el('span', 'jp-wanllm-count');

  constructor(
    private readonly state: RunBrowserState,
    private readonly trans: TranslationBundle,
    private readonly on: ControlsHandlers
  ) {
    this.sortDir = iconButton('jp-wanllm-sortdir', caretDownIcon, trans.__('Toggle sort direction'));
    this.projectSelect.title = trans.__('Project');
    this.projectSelect.addEventListener('change', () => {
      state.setProject(this.projectSelect.value);
      on.projectChanged();
    });
    this.metricSelect.title = trans.__('Metric shown per run');
    this.metricSelect.addEventListener('change', () => {
      state.setMetric(this.metricSelect.value || null);
      on.viewChanged();
    });
    this.search.type = 'search';
    this.search.placeholder = trans.__('Search: name, tag:x, config.lr>=0.01 OR …');
    this.search.spellcheck = false;
    this.search.addEventListener('input', () => {
      state.setQuery(this.search.value);
      on.viewChanged();
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
    this.sortSelect.addEventListener('change', () => this.applySort(state.descending));
    this.sortDir.addEventListener('click', () => this.applySort(!state.descending));
    const row1 = el('div', 'jp-wanllm-row');
    row1.append(this.projectSelect, this.metricSelect);
    const row2 = el('div', 'jp-wanllm-row');
    row2.append(el('span', 'jp-wanllm-label', trans.__('Sort')), this.sortSelect, this.sortDir, this.count);
    this.node.append(row1, this.search, this.searchError, row2);
  }

  /** "1 run" / "N runs", translated. */
  runs(n: number): string {
    return this.trans._n('%1 run', '%1 runs', n);
  }

  /** Redraw the project picker from the state (left alone when unchanged: an open dropdown stays open). */
  renderProjects(): void {
    const { projects, project } = this.state;
    const labels = projects.map(p => `${p.name} (${p.run_count})`);
    const current = [...this.projectSelect.options].map(o => o.textContent);
    if (labels.join('\n') === current.join('\n') && this.projectSelect.value === (project ?? '')) {
      return;
    }
    this.projectSelect.title = project ? this.trans.__('Project: %1', project) : this.trans.__('Project');
    this.projectSelect.replaceChildren(
      ...projects.map((p, i) => {
        const option = el('option', '', labels[i]);
        option.title = `${p.name}: ${this.runs(p.run_count)}`;
        option.value = p.name;
        option.selected = p.name === project;
        return option;
      })
    );
    this.projectSelect.disabled = projects.length === 0;
  }

  /** Fill the metric picker with the project's metric `names`, `chosen` selected. */
  setMetrics(names: string[], chosen: string | null): void {
    this.metricSelect.replaceChildren(
      ...(names.length ? names : ['']).map(name => {
        const option = el('option', '', name || this.trans.__('no metrics yet'));
        option.value = name;
        option.selected = name === chosen;
        return option;
      })
    );
  }

  /** Redraw the query's error and the count of `shown` runs out of the state's. */
  render(shown: number): void {
    const { queryError, runCount: total } = this.state;
    this.searchError.textContent = queryError ?? '';
    this.searchError.hidden = !queryError;
    this.search.classList.toggle('jp-mod-error', !!queryError);
    this.count.textContent = shown === total ? this.runs(total) : this.trans.__('%1 of %2', shown, this.runs(total));
    this.node.hidden = total === 0 && this.state.projects.length === 0;
  }

  private applySort(descending: boolean): void {
    this.state.setSort(this.sortSelect.value as SortKey, descending);
    const icon = descending ? caretDownIcon : caretUpIcon;
    this.sortDir.replaceChildren();
    icon.element({ container: this.sortDir });
    this.on.viewChanged();
  }
}
