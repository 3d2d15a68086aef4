import { describe, expect, it } from 'vitest';

import {
  compareSnippet,
  dataFrameSnippet,
  parseTags,
  pyString,
  tagChanges,
  workspaceSnippet
} from '../labextension/snippets';

describe('snippets', () => {
  it('writes valid Python string literals', () => {
    expect(pyString('a"b\\c\n')).toBe('"a\\"b\\\\c\\n"');
  });

  it('builds the workspace, compare and DataFrame cells', () => {
    expect(workspaceSnippet('abc')).toBe('import wanllm_jupyter as wl\nwl.workspace("abc")');
    expect(compareSnippet(['a', 'b'], 'train/loss')).toBe(
      'import wanllm_jupyter as wl\nwl.compare(["a", "b"], "train/loss")'
    );
    expect(dataFrameSnippet('demo', [])).toBe(
      'import wanllm_jupyter as wl\nruns = wl.Api().runs(project="demo")\nruns'
    );
    expect(dataFrameSnippet('demo', ['a'])).toContain('runs = runs[runs["id"].isin(["a"])]');
  });

  it('parses tag lists and computes the PATCH changes', () => {
    expect(parseTags(' a, b  c,,a ')).toEqual(['a', 'b', 'c']);
    expect(tagChanges(['a', 'b'], ['b', 'c'])).toEqual({ add_tags: ['c'], remove_tags: ['a'] });
  });
});
