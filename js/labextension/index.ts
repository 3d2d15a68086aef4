/** The wanllm JupyterLab plugin: the run browser in the left sidebar, and its commands. */

import { ILayoutRestorer, type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon, ToolbarButton } from '@jupyterlab/ui-components';

import runsSvg from '../../js/style/runs.svg';

import { RunsApi } from './api';
import { RunBrowserPanel } from './panel';
import type { RunSocketMessage } from '../shared/types';
import { LiveSocket } from './socket';

export const PANEL_ID = 'wanllm-run-browser';
const NOTEBOOK_APP = 'Jupyter Notebook'; // `app.name` of Notebook 7
const TOGGLE_ID = 'wanllm-runs-toggle';
const ROW = '.jp-wanllm-RunRow';

export const runsIcon = new LabIcon({ name: 'wanllm-jupyter:runs', svgstr: runsSvg });

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
    panel.title.label = app.name === NOTEBOOK_APP ? 'Runs' : '';
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
    if (app.name === NOTEBOOK_APP) {
      addToggleButton(app, panel);
    }
    palette?.addItem({ command: 'wanllm:show', category: 'Experiment Runs' });
    palette?.addItem({ command: 'wanllm:refresh', category: 'Experiment Runs' });
  }
};

/** The shell of Notebook 7 as seen here: its side panels have no tab bar, only show/hide. */
interface CollapsibleShell {
  collapseLeft?: () => void;
}

/**
 * Notebook 7 shows left-area widgets without a tab bar (only under View → Left Sidebar), so its
 * menu row gets a button with the runs icon that shows or hides the run browser.
 */
function addToggleButton(app: JupyterFrontEnd, panel: RunBrowserPanel): void {
  const shell = app.shell as JupyterFrontEnd.IShell & CollapsibleShell;
  const button = new ToolbarButton({
    icon: runsIcon,
    tooltip: 'Show or hide the experiment runs (wanllm)',
    onClick: () =>
      panel.isVisible && shell.collapseLeft ? shell.collapseLeft() : shell.activateById(PANEL_ID)
  });
  button.id = TOGGLE_ID;
  shell.add(button, 'menu', { rank: 10_500 }); // between the kernel status and "Trusted"
}

export default plugin;
