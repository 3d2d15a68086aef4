/** The `wanllm/ws/runs` socket: pushes run changes; reconnects with backoff and reports its status. */

import { URLExt } from '@jupyterlab/coreutils';
import type { ServerConnection } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import { backoffDelay } from '../shared/backoff';
import type { RunSocketMessage } from '../shared/types';

export type SocketStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

/** The socket URL, built the way JupyterLab's EventManager builds its own. */
export function runSocketUrl(settings: ServerConnection.ISettings): string {
  let url = URLExt.join(settings.wsUrl, 'wanllm/ws/runs');
  const token = settings.token;
  if (settings.appendToken && token !== '') {
    url += `?token=${encodeURIComponent(token)}`;
  }
  return url;
}

export class RunSocket {
  /** Every message the server sends. */
  readonly message = new Signal<this, RunSocketMessage>(this);
  /** Status changes; `live` after a reconnect means events may have been missed. */
  readonly statusChanged = new Signal<this, SocketStatus>(this);
  private socket: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private _status: SocketStatus = 'closed';

  constructor(private readonly settings: ServerConnection.ISettings) {}

  get status(): SocketStatus {
    return this._status;
  }

  open(): void {
    this.setStatus(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const socket = new this.settings.WebSocket(runSocketUrl(this.settings));
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.setStatus('live');
    };
    socket.onmessage = event => {
      try {
        this.message.emit(JSON.parse(String(event.data)) as RunSocketMessage);
      } catch (error) {
        console.error('wanllm: unreadable run socket message', event.data, error);
      }
    };
    socket.onclose = () => {
      if (this.socket !== socket) {
        return;
      }
      this.socket = null;
      this.setStatus('reconnecting');
      this.timer = setTimeout(() => this.open(), backoffDelay(this.attempt++));
    };
  }

  dispose(): void {
    if (this.timer) {
      clearTimeout(this.timer);
    }
    const socket = this.socket;
    this.socket = null;
    socket?.close();
    this.setStatus('closed');
    Signal.clearData(this);
  }

  private setStatus(status: SocketStatus): void {
    if (status !== this._status) {
      this._status = status;
      this.statusChanged.emit(status);
    }
  }
}
