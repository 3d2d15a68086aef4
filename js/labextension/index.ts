/** The wanllm JupyterLab plugin: the run browser in the left sidebar, and its commands. */

import { ILayoutRestorer, type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon, ToolbarButton } from '@jupyterlab/ui-components';

import runsSvg from '../../js/style/runs.svg';

import { RunsApi } from './api';
import { RunBrowserPanel } from './panel';
import { readSettings } from './settings';
import type { RunSocketMessage } from '../shared/types';
import { LiveSocket } from './socket';

export const PANEL_ID = 'wanllm-run-browser';
const NOTEBOOK_APP = 'Jupyter Notebook'; // `app.name` of Notebook 7
const TOGGLE_ID = 'wanllm-runs-toggle';
const ROW = '.jp-wanllm-RunRow';

export const runsIcon = new LabIcon({ name: 'wanllm-jupyter:runs', svgstr: runsSvg });

const PLUGIN_ID = 'wanllm-jupyter:run-browser'; // its settings: schema/run-browser.json

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A sidebar that lists experiment runs with live state, metrics and actions.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('wanllm_jupyter');
    const settings = ServerConnection.makeSettings();
    const socket = new LiveSocket<RunSocketMessage>(settings, 'wanllm/ws/runs');
    const panel = new RunBrowserPanel(app, tracker, new RunsApi(settings), socket, translator ?? nullTranslator);
    panel.id = PANEL_ID;
    panel.title.icon = runsIcon;
    panel.title.caption = trans.__('Experiment runs (wanllm)');
    panel.title.label = app.name === NOTEBOOK_APP ? trans.__('Runs') : '';
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, PANEL_ID);
    socket.open();
    void panel.reload();
    registry
      ?.load(PLUGIN_ID)
      .then(loaded => {
        panel.configure(readSettings(loaded.composite));
        loaded.changed.connect(() => panel.configure(readSettings(loaded.composite)));
      })
      .catch(error => console.error('wanllm: run browser settings not loaded', error));

    const { commands } = app;
    const { actions } = panel;
    const has = () => actions.targetRuns().length > 0;
    const add = (id: string, label: string, execute: () => unknown, isEnabled: () => boolean = has) =>
      commands.addCommand(`wanllm:${id}`, { label, execute, isEnabled });
    add('open-workspace', trans.__('Open Workspace'), () => actions.openWorkspace());
    add(
      'compare',
      trans.__('Compare Selected Runs'),
      () => actions.compareSelected(),
      () => has() && panel.state.metric !== null
    );
    add(
      'insert-dataframe',
      trans.__('Insert DataFrame Snippet'),
      () => actions.insertDataFrame(),
      () => panel.state.project !== null
    );
    add('copy-id', trans.__('Copy Run Id'), () => actions.copyId());
    add('edit-tags', trans.__('Add/Remove Tags…'), () => actions.editTags());
    add('rename', trans.__('Rename…'), () => actions.rename());
    add('delete', trans.__('Delete…'), () => actions.deleteRuns());
    add(
      'refresh',
      trans.__('Reload Runs'),
      () => panel.reload(),
      () => true
    );
    add(
      'show',
      trans.__('Show Run Browser'),
      () => app.shell.activateById(PANEL_ID),
      () => true
    );
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
      addToggleButton(app, panel, trans.__('Show or hide the experiment runs (wanllm)'));
    }
    palette?.addItem({ command: 'wanllm:show', category: trans.__('Experiment Runs') });
    palette?.addItem({ command: 'wanllm:refresh', category: trans.__('Experiment Runs') });
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
function addToggleButton(app: JupyterFrontEnd, panel: RunBrowserPanel, tooltip: string): void {
  const shell = app.shell as JupyterFrontEnd.IShell & CollapsibleShell;
  const button = new ToolbarButton({
    icon: runsIcon,
    tooltip,
    onClick: () => (panel.isVisible && shell.collapseLeft ? shell.collapseLeft() : shell.activateById(PANEL_ID))
  });
  button.id = TOGGLE_ID;
  shell.add(button, 'menu', { rank: 10_500 }); // between the kernel status and "Trusted"
}

export default plugin;
