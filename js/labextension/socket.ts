/** Server-push WebSockets (`wanllm/ws/runs`, `wanllm/ws/metrics/<id>`): reconnect with backoff, report status. */

import { URLExt } from '@jupyterlab/coreutils';
import type { ServerConnection } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import { backoffDelay } from '../shared/backoff';

export type SocketStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

/** A socket URL under the server's base URL, built the way JupyterLab's EventManager builds its own. */
export function socketUrl(settings: ServerConnection.ISettings, path: string): string {
  let url = URLExt.join(settings.wsUrl, path);
  const token = settings.token;
  if (settings.appendToken && token !== '') {
    url += `?token=${encodeURIComponent(token)}`;
  }
  return url;
}

export class LiveSocket<T> {
  /** Every message the server sends (parsed JSON). */
  readonly message = new Signal<this, T>(this);
  /** Status changes; `live` after `reconnecting` means messages may have been missed. */
  readonly statusChanged = new Signal<this, SocketStatus>(this);
  private socket: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private _status: SocketStatus = 'closed';

  /** `greeting` is sent on every (re)connect, e.g. a subscribe message. */
  constructor(
    private readonly settings: ServerConnection.ISettings,
    readonly path: string,
    private readonly greeting?: unknown
  ) {}

  get status(): SocketStatus {
    return this._status;
  }

  open(): void {
    this.setStatus(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const socket = new this.settings.WebSocket(socketUrl(this.settings, this.path));
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      if (this.greeting !== undefined) {
        socket.send(JSON.stringify(this.greeting));
      }
      this.setStatus('live');
    };
    socket.onmessage = event => {
      try {
        this.message.emit(JSON.parse(String(event.data)) as T);
      } catch (error) {
        console.error(`wanllm: unreadable message on ${this.path}`, event.data, error);
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
