/** One run row of the run browser: check box, name, duration, state, tags, metric cell, hover actions. */

import type { TranslationBundle } from '@jupyterlab/translation';
import { copyIcon, ellipsesIcon, launchIcon } from '@jupyterlab/ui-components';

import { sparklinePath } from '../shared/sparkline';
import type { Run } from '../shared/types';
import { formatDuration, formatValue, runDuration } from '../shared/values';
import { el, iconButton } from './dom';
import type { RunBrowserState } from './state';

const SPARK_WIDTH = 64;
const SPARK_HEIGHT = 20;
const SHOWN_TAGS = 3;

/** What a row needs besides its run: the browser's state, a loader for missing metric cells, strings. */
export interface RowContext {
  state: RunBrowserState;
  loadCell: (run: Run) => void;
  trans: TranslationBundle;
}

/** Fill `row` (a recycled element) with `run`. */
export function renderRunRow(row: HTMLElement, run: Run, ctx: RowContext): void {
  const { state, trans } = ctx;
  const selected = state.selected.has(run.id);
  row.dataset.id = run.id;
  row.dataset.state = run.state;
  row.setAttribute('role', 'option');
  row.setAttribute('aria-selected', String(selected));
  row.classList.toggle('jp-mod-focused', state.focusId === run.id);
  row.title = `${run.name}\n${run.id}\n${trans.__('Double-click to open its workspace')}`;
  const check = el('input', 'jp-wanllm-check');
  check.type = 'checkbox';
  check.checked = selected;
  check.tabIndex = -1;
  const badge = el('span', 'wl-state-badge', run.state);
  badge.dataset.state = run.state;
  const line1 = el('div', 'jp-wanllm-line');
  line1.append(
    el('span', 'jp-wanllm-name', run.name),
    el('span', 'jp-wanllm-duration', formatDuration(runDuration(run)))
  );
  const line2 = el('div', 'jp-wanllm-line');
  line2.append(badge, ...run.tags.slice(0, SHOWN_TAGS).map(t => el('span', 'jp-wanllm-tag', t)));
  if (run.tags.length > SHOWN_TAGS) {
    line2.append(el('span', 'jp-wanllm-tag jp-wanllm-more', `+${run.tags.length - SHOWN_TAGS}`));
  }
  const main = el('div', 'jp-wanllm-main');
  main.append(line1, line2);
  const actions = el('div', 'jp-wanllm-actions');
  const action = (name: string, icon: typeof launchIcon, title: string): HTMLButtonElement => {
    const b = iconButton('jp-wanllm-act', icon, title);
    b.dataset.action = name;
    return b;
  };
  actions.append(
    action('workspace', launchIcon, trans.__('Open workspace')),
    action('copy', copyIcon, trans.__('Copy run id')),
    action('more', ellipsesIcon, trans.__('More actions'))
  );
  row.replaceChildren(check, main, metricCell(run, ctx), actions);
}

/** The chosen metric's latest value and sparkline; asks for the cell when it is not loaded. */
function metricCell(run: Run, { state, loadCell, trans }: RowContext): HTMLElement {
  const cell = el('div', 'jp-wanllm-metric-cell');
  const metric = state.metric;
  if (!metric) {
    return cell;
  }
  const data = state.cell(run.id);
  if (!data) {
    loadCell(run);
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
    none.title = trans.__('No %1 points yet', metric);
    cell.append(none);
    return cell;
  }
  const value = el('span', 'jp-wanllm-value', formatValue(data.latest));
  value.title = trans.__('%1 (latest)', metric);
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'jp-wanllm-spark');
  svg.setAttribute('viewBox', `0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}`);
  svg.setAttribute('width', String(SPARK_WIDTH));
  svg.setAttribute('height', String(SPARK_HEIGHT));
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', sparklinePath(data.values, SPARK_WIDTH, SPARK_HEIGHT));
  svg.append(path);
  cell.append(value, svg);
  return cell;
}
