/** What the run browser shows while a project has no runs: how to log the first one. */

import type { TranslationBundle } from '@jupyterlab/translation';

import { button, el } from './dom';

const FIRST_RUN = 'import wanllm_jupyter as wl\nrun = wl.init(project="demo")\nrun.log({"loss": 0.5})';

/** The empty-state block; `insert` puts FIRST_RUN into the active notebook. */
export function emptyView(trans: TranslationBundle, insert: (code: string) => void): HTMLElement {
  const insertButton = button(
    'jp-wanllm-primary',
    trans.__('Insert into a notebook'),
    trans.__('Insert these lines into the active notebook')
  );
  insertButton.addEventListener('click', () => insert(FIRST_RUN));
  const empty = el('div', 'jp-wanllm-empty');
  empty.append(
    el('div', 'jp-wanllm-empty-title', trans.__('No runs yet')),
    el('p', '', trans.__('Log your first run from any notebook cell:')),
    el('pre', 'jp-wanllm-snippet', FIRST_RUN),
    insertButton,
    el('p', 'jp-wanllm-hint', trans.__('It shows up here live, with its state, duration and metrics.'))
  );
  return empty;
}
