/** What the run browser does to runs: open, compare, snippets, copy, rename, tag, delete (with their dialogs). */

import type { JupyterFrontEnd } from '@jupyterlab/application';
import { Clipboard, Dialog, InputDialog, Notification, showDialog } from '@jupyterlab/apputils';
import type { INotebookTracker } from '@jupyterlab/notebook';
import type { TranslationBundle } from '@jupyterlab/translation';

import type { Run } from '../shared/types';
import type { RunsApi } from './api';
import { insertCode } from './notebook';
import { compareSnippet, dataFrameSnippet, parseTags, tagChanges, workspaceSnippet } from './snippets';
import type { RunBrowserState } from './state';

/** How the actions report back to the browser. */
export interface ActionHost {
  /** A run the server returned after a change. */
  runUpdated(run: Run): void;
  /** Runs were removed: redraw. */
  runsRemoved(): void;
  showError(error: unknown): void;
  /** The kernel of a notebook created to receive a snippet. */
  kernelName(): string;
}

export class RunActions {
  /** The run a context-menu command applies to (the row right-clicked). */
  contextRunId: string | null = null;

  constructor(
    private readonly app: JupyterFrontEnd,
    private readonly tracker: INotebookTracker,
    private readonly api: RunsApi,
    private readonly state: RunBrowserState,
    private readonly host: ActionHost,
    private readonly trans: TranslationBundle
  ) {}

  /** The runs an action applies to: the selection when it holds the context run, else that run. */
  targetRuns(): Run[] {
    const id = this.contextRunId;
    if (id && !this.state.selected.has(id)) {
      const run = this.state.getRun(id);
      return run ? [run] : [];
    }
    return this.state.selectedRuns();
  }

  async openWorkspace(id?: string): Promise<void> {
    const runId = id ?? this.targetRuns()[0]?.id;
    if (runId) {
      await this.insert(workspaceSnippet(runId), true);
    }
  }

  async compareSelected(): Promise<void> {
    const runs = this.targetRuns();
    if (runs.length && this.state.metric) {
      await this.insert(
        compareSnippet(
          runs.map(r => r.id),
          this.state.metric
        ),
        true
      );
    }
  }

  async insertDataFrame(): Promise<void> {
    if (this.state.project !== null) {
      await this.insert(
        dataFrameSnippet(
          this.state.project,
          this.targetRuns().map(r => r.id)
        ),
        false
      );
    }
  }

  /** Put `code` into the active notebook (or a new one), running it when `run`. */
  async insert(code: string, run: boolean): Promise<void> {
    await this.guard(insertCode(this.app, this.tracker, code, run, this.host.kernelName()));
  }

  copyId(id?: string): void {
    const runId = id ?? this.targetRuns()[0]?.id;
    if (runId) {
      Clipboard.copyToSystem(runId);
      Notification.info(this.trans.__('Copied run id %1', runId), { autoClose: 2000 });
    }
  }

  async rename(): Promise<void> {
    const run = this.targetRuns()[0];
    if (!run) {
      return;
    }
    const result = await InputDialog.getText({
      title: this.trans.__('Rename run'),
      text: run.name,
      okLabel: this.trans.__('Rename')
    });
    const name = result.value?.trim();
    if (result.button.accept && name && name !== run.name) {
      await this.guard(this.api.patchRun(run.id, { name }).then(updated => this.host.runUpdated(updated)));
    }
  }

  async editTags(): Promise<void> {
    const runs = this.targetRuns();
    if (!runs.length) {
      return;
    }
    const common = runs.map(r => r.tags).reduce((a, b) => a.filter(t => b.includes(t)));
    const result = await InputDialog.getText({
      title:
        runs.length === 1 ? this.trans.__('Tags of %1', runs[0].name) : this.trans.__('Tags of %1 runs', runs.length),
      label: this.trans.__('Comma-separated tags (remove a tag by deleting it)'),
      text: common.join(', '),
      okLabel: this.trans.__('Save')
    });
    if (!result.button.accept || result.value === null) {
      return;
    }
    const changes = tagChanges(common, parseTags(result.value));
    if (!changes.add_tags.length && !changes.remove_tags.length) {
      return;
    }
    await this.guard(
      Promise.all(runs.map(r => this.api.patchRun(r.id, changes))).then(updated =>
        updated.forEach(run => this.host.runUpdated(run))
      )
    );
  }

  async deleteRuns(): Promise<void> {
    const runs = this.targetRuns();
    if (!runs.length) {
      return;
    }
    const result = await showDialog({
      title:
        runs.length === 1
          ? this.trans.__('Delete run “%1”?', runs[0].name)
          : this.trans.__('Delete %1 runs?', runs.length),
      body: this.trans.__('Its metrics, config and summary are deleted for good. This cannot be undone.'),
      buttons: [
        Dialog.cancelButton({ label: this.trans.__('Cancel') }),
        Dialog.warnButton({ label: this.trans.__('Delete') })
      ]
    });
    if (!result.button.accept) {
      return;
    }
    for (const run of runs) {
      try {
        await this.api.deleteRun(run.id);
        this.state.removeRun(run.id);
      } catch (error) {
        this.host.showError(error);
        break;
      }
    }
    this.host.runsRemoved();
  }

  private async guard(action: Promise<unknown>): Promise<void> {
    try {
      await action;
    } catch (error) {
      this.host.showError(error);
    }
  }
}
