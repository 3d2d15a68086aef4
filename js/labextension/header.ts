/** The run browser's header: its title, the live connection's status and a reload button. */

import type { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';

import { el, iconButton } from './dom';
import type { SocketStatus } from './socket';

export class RunHeader {
  readonly node = el('div', 'jp-wanllm-header');
  private readonly status = el('span', 'jp-wanllm-status');

  constructor(
    private readonly trans: TranslationBundle,
    reload: () => void
  ) {
    const refresh = iconButton('jp-wanllm-refresh', refreshIcon, trans.__('Reload projects and runs'));
    refresh.addEventListener('click', reload);
    this.node.append(el('span', 'jp-wanllm-title', trans.__('Runs')), this.status, refresh);
  }

  /** Show the live socket's `status`; true when it is live again after reconnecting. */
  setStatus(status: SocketStatus): boolean {
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
    return status === 'live' && wasDown;
  }
}
