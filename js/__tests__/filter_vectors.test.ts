/**
 * The sidebar's and run table's query parser against tests/filter_vectors.json, the
 * vectors the Python parser and every store backend are held to as well.
 */
import { describe, expect, it } from 'vitest';

import { compileSearch } from '../shared/search';
import type { Run } from '../shared/types';
import data from '../../tests/filter_vectors.json';

interface Vectors {
  runs: Run[];
  matches: { query: string; names: string[] }[];
  errors: { query: string; error: string }[];
}

const vectors = data as unknown as Vectors;

describe('tests/filter_vectors.json', () => {
  it.each(vectors.matches)('$query selects $names', ({ query, names }) => {
    expect(vectors.runs.filter(compileSearch(query)).map(r => r.name)).toEqual(names);
  });

  it.each(vectors.errors)('$query is refused naming $error', ({ query, error }) => {
    expect(() => compileSearch(query)).toThrowError(error);
  });
});
