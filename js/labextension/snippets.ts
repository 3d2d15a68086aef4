/** Python code the run browser inserts into notebooks. */

/** A Python string literal (JSON's escapes are all valid Python). */
export function pyString(text: string): string {
  return JSON.stringify(text);
}

const IMPORT = 'import wanllm_jupyter as wl';

export function workspaceSnippet(runId: string): string {
  return `${IMPORT}\nwl.workspace(${pyString(runId)})`;
}

export function compareSnippet(runIds: readonly string[], metric: string): string {
  return `${IMPORT}\nwl.compare([${runIds.map(pyString).join(', ')}], ${pyString(metric)})`;
}

export function dataFrameSnippet(project: string, runIds: readonly string[]): string {
  const runs = `runs = wl.Api().runs(project=${pyString(project)})`;
  if (runIds.length === 0) {
    return `${IMPORT}\n${runs}\nruns`;
  }
  return `${IMPORT}\n${runs}\nruns = runs[runs["id"].isin([${runIds.map(pyString).join(', ')}])]\nruns`;
}

/** Parse a comma/space separated tag list, dropping blanks and duplicates. */
export function parseTags(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/[,\s]+/)
        .map(t => t.trim())
        .filter(Boolean)
    )
  ];
}

/** The PATCH body that turns tag list `before` into `after`. */
export function tagChanges(
  before: readonly string[],
  after: readonly string[]
): { add_tags: string[]; remove_tags: string[] } {
  return {
    add_tags: after.filter(t => !before.includes(t)),
    remove_tags: before.filter(t => !after.includes(t))
  };
}
