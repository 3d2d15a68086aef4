/** The bar under the run list while runs are selected: count, clear, and what to do with them. */

import type { TranslationBundle } from '@jupyterlab/translation';
import { closeIcon } from '@jupyterlab/ui-components';

import { button, el, iconButton } from './dom';
import type { RunActions } from './run_actions';

/** Redraw `bar` for `count` selected runs (hidden when none); `clear` empties the selection. */
export function renderSelectionBar(
  bar: HTMLElement,
  count: number,
  canCompare: boolean,
  actions: RunActions,
  clear: () => void,
  trans: TranslationBundle
): void {
  bar.hidden = count === 0;
  if (count === 0) {
    return;
  }
  const item = (className: string, label: string, title: string, run: () => unknown): HTMLButtonElement => {
    const b = button(className, label, title);
    b.addEventListener('click', () => void run());
    return b;
  };
  const compare = item(
    'jp-wanllm-primary jp-wanllm-compare',
    trans.__('Compare'),
    trans.__('Insert wl.compare(...) for the selected runs'),
    () => actions.compareSelected()
  );
  compare.disabled = !canCompare;
  const close = iconButton('jp-wanllm-clear', closeIcon, trans.__('Clear the selection'));
  close.addEventListener('click', clear);
  bar.replaceChildren(
    el('span', 'jp-wanllm-selcount', trans._n('%1 selected', '%1 selected', count)),
    close,
    compare,
    item('jp-wanllm-frame', trans.__('DataFrame'), trans.__('Insert a DataFrame of the selected runs'), () =>
      actions.insertDataFrame()
    ),
    item('jp-wanllm-tags', trans.__('Tags'), trans.__('Add or remove tags'), () => actions.editTags()),
    item('jp-wanllm-danger', trans.__('Delete'), trans.__('Delete the selected runs'), () => actions.deleteRuns())
  );
}
