/** The run browser's error line: the last error's message and a button dismissing it. */

import type { TranslationBundle } from '@jupyterlab/translation';
import { closeIcon } from '@jupyterlab/ui-components';

import { el, iconButton } from './dom';

export class ErrorBox {
  readonly node = el('div', 'jp-wanllm-error');

  constructor(private readonly trans: TranslationBundle) {
    this.node.hidden = true;
  }

  show(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    console.error('wanllm:', error);
    const close = iconButton('jp-wanllm-error-close', closeIcon, this.trans.__('Dismiss'));
    close.addEventListener('click', () => this.clear());
    this.node.replaceChildren(el('span', 'jp-wanllm-error-text', message), close);
    this.node.hidden = false;
  }

  clear(): void {
    this.node.hidden = true;
    this.node.replaceChildren();
  }
}
