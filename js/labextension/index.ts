/** The wanllm JupyterLab plugin: the run browser in the left sidebar, and its commands. */

import { ILayoutRestorer, type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';

import { RunsApi } from './api';
import { RunBrowserPanel } from './panel';
import type { RunSocketMessage } from '../shared/types';
import { LiveSocket } from './socket';

export const PANEL_ID = 'wanllm-run-browser';
const ROW = '.jp-wanllm-RunRow';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161"><path d="M3 3h2v16h16v2H3z"/>
<path d="M7.3 15.7 6 14.3l4.5-4.6 3 3 5.3-5.9 1.4 1.4-6.7 7.3-3-3z"/>
<circle cx="19.5" cy="5.5" r="2"/></g></svg>`;

export const runsIcon = new LabIcon({ name: 'wanllm-jupyter:runs', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'wanllm-jupyter:run-browser',
  description: 'A sidebar that lists experiment runs with live state, metrics and actions.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const settings = ServerConnection.makeSettings();
    const socket = new LiveSocket<RunSocketMessage>(settings, 'wanllm/ws/runs');
    const panel = new RunBrowserPanel(app, tracker, new RunsApi(settings), socket);
    panel.id = PANEL_ID;
    panel.title.icon = runsIcon;
    panel.title.caption = 'Experiment runs (wanllm)';
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, PANEL_ID);
    socket.open();
    void panel.reload();

    const { commands } = app;
    const has = () => panel.targetRuns().length > 0;
    const add = (id: string, label: string, execute: () => unknown, isEnabled: () => boolean = has) =>
      commands.addCommand(`wanllm:${id}`, { label, execute, isEnabled });
    add('open-workspace', 'Open Workspace', () => panel.openWorkspace());
    add('compare', 'Compare Selected Runs', () => panel.compareSelected(), () => has() && panel.state.metric !== null);
    add('insert-dataframe', 'Insert DataFrame Snippet', () => panel.insertDataFrame(), () => panel.state.project !== null);
    add('copy-id', 'Copy Run Id', () => panel.copyId());
    add('edit-tags', 'Add/Remove Tags…', () => panel.editTags());
    add('rename', 'Rename…', () => panel.rename());
    add('delete', 'Delete…', () => panel.deleteRuns());
    add('refresh', 'Reload Runs', () => panel.reload(), () => true);
    add('show', 'Show Run Browser', () => app.shell.activateById(PANEL_ID), () => true);
    const menu: Array<[string, number]> = [
      ['open-workspace', 1],
      ['compare', 2],
      ['insert-dataframe', 3],
      ['copy-id', 4],
      ['edit-tags', 5],
      ['rename', 6],
      ['delete', 7]
    ];
    for (const [id, rank] of menu) {
      app.contextMenu.addItem({ command: `wanllm:${id}`, selector: ROW, rank });
    }
    palette?.addItem({ command: 'wanllm:show', category: 'Experiment Runs' });
    palette?.addItem({ command: 'wanllm:refresh', category: 'Experiment Runs' });
  }
};

export default plugin;
