/** The run browser's user settings (schema/run-browser.json), read from JupyterLab's setting registry. */

import type { ISettingRegistry } from '@jupyterlab/settingregistry';

export interface RunBrowserSettings {
  /** Height of a run row in px. */
  rowHeight: number;
  /** At most this many running runs in view stream their metric over a socket each. */
  socketLimit: number;
  /** How often durations of running runs are redrawn and metric sockets follow the scroll, in ms. */
  refreshInterval: number;
  /** The kernel of a notebook created to receive a snippet when none is open. */
  kernelName: string;
}

export const DEFAULT_SETTINGS: Readonly<RunBrowserSettings> = {
  rowHeight: 54,
  socketLimit: 16,
  refreshInterval: 1000,
  kernelName: 'python3'
};

/** The settings in `composite` (the registry's merged user and default values), defaults for the missing. */
export function readSettings(composite: ISettingRegistry.ISettings['composite']): RunBrowserSettings {
  const value = <K extends keyof RunBrowserSettings>(key: K): RunBrowserSettings[K] => {
    const v = composite[key];
    return typeof v === typeof DEFAULT_SETTINGS[key] ? (v as RunBrowserSettings[K]) : DEFAULT_SETTINGS[key];
  };
  return {
    rowHeight: value('rowHeight'),
    socketLimit: value('socketLimit'),
    refreshInterval: value('refreshInterval'),
    kernelName: value('kernelName')
  };
}
