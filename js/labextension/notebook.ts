/** Put a snippet into the active notebook (or a new one) and optionally run it. */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import { NotebookActions, type INotebookTracker, type NotebookPanel } from '@jupyterlab/notebook';

async function targetNotebook(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  kernelName: string
): Promise<NotebookPanel> {
  const current = tracker.currentWidget;
  if (current) {
    app.shell.activateById(current.id);
    return current;
  }
  const panel = (await app.commands.execute('notebook:create-new', { kernelName })) as NotebookPanel;
  await panel.context.ready;
  return panel;
}

/**
 * Insert `code` as a new cell below the active one (or into the active cell
 * when it is empty), make it active, and run it when `run` is true. A new
 * notebook, when none is open, starts `kernelName`.
 */
export async function insertCode(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  code: string,
  run: boolean,
  kernelName: string
): Promise<void> {
  const panel = await targetNotebook(app, tracker, kernelName);
  const notebook = panel.content;
  const active = notebook.activeCell;
  if (!active || active.model.type !== 'code' || active.model.sharedModel.getSource().trim() !== '') {
    NotebookActions.insertBelow(notebook);
  }
  notebook.activeCell!.model.sharedModel.setSource(code);
  if (run) {
    await panel.sessionContext.ready;
    await NotebookActions.run(notebook, panel.sessionContext);
  }
}
