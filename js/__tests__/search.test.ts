import { describe, expect, it } from 'vitest';

import { compileSearch, SearchSyntaxError } from '../shared/search';
import { makeRun } from './fixtures';

const runs = [
  makeRun({
    id: 'aaa1',
    name: 'baseline',
    tags: ['sweep', 'gpu'],
    config: { lr: 0.01, optim: 'adam', model: { depth: 12 } },
    summary: { loss: 0.3 }
  }),
  makeRun({
    id: 'bbb2',
    name: 'big lr',
    state: 'running',
    tags: ['sweep'],
    config: { lr: 0.1, optim: 'sgd' },
    summary: { loss: 'NaN' }
  }),
  makeRun({ id: 'ccc3', name: 'tiny', state: 'failed', tags: [], config: { lr: 0.001, optim: 'adam' }, summary: {} })
];
const names = (query: string) => runs.filter(compileSearch(query)).map(r => r.name);

describe('compileSearch', () => {
  it('matches everything when empty', () => {
    expect(names('   ')).toEqual(['baseline', 'big lr', 'tiny']);
  });

  it('matches bare words against name, notes, tags and id prefix (not config values)', () => {
    expect(names('base')).toEqual(['baseline']);
    expect(names('bbb')).toEqual(['big lr']);
    expect(names('gpu')).toEqual(['baseline']);
    expect(names('sgd')).toEqual([]);
  });

  it('joins terms with AND by juxtaposition and with the AND keyword', () => {
    expect(names('sweep base')).toEqual(['baseline']);
    expect(names('sweep AND base')).toEqual(['baseline']);
    expect(names('sweep && big')).toEqual(['big lr']);
  });

  it('gives AND precedence over OR', () => {
    expect(names('tag:sweep config.optim=adam OR state:failed')).toEqual(['baseline', 'tiny']);
    expect(names('tiny || big')).toEqual(['big lr', 'tiny']);
  });

  it('compares config and summary values numerically', () => {
    expect(names('config.lr>=0.01')).toEqual(['baseline', 'big lr']);
    expect(names('config.lr<0.01')).toEqual(['tiny']);
    expect(names('summary.loss<1')).toEqual(['baseline']);
    expect(names('config.lr=0.1')).toEqual(['big lr']);
  });

  it('reads nested config keys with dots', () => {
    expect(names('config.model.depth=12')).toEqual(['baseline']);
  });

  it('supports != , ~ and negation', () => {
    expect(names('config.optim!=adam')).toEqual(['big lr']);
    expect(names('name~lr')).toEqual(['big lr']);
    expect(names('-tag:sweep')).toEqual(['tiny']);
    expect(names('tag!=gpu')).toEqual(['big lr', 'tiny']);
  });

  it('keeps quoted spaces', () => {
    expect(names('name:"big lr"')).toEqual(['big lr']);
  });

  it('matches tags exactly with tag:, tag= and tag~ (as the server does)', () => {
    expect(names('tag:swe')).toEqual([]);
    expect(names('tag~swe')).toEqual([]);
    expect(names('tag=sweep')).toEqual(['baseline', 'big lr']);
  });

  it.each([
    ['name:"open', /unterminated quote/],
    ['OR tiny', /'OR' needs a term before it/],
    ['tiny AND', /'AND' needs a term after it/],
    ['tiny OR OR big', /'OR' needs a term before it/],
    ['exit_code>abc', /expected an integer, got 'abc'/],
    ['colour:red', /unknown field 'colour'/],
    ['config.lr<null', /null is only allowed with = or !=/]
  ])('rejects %s with a precise error', (query, message) => {
    expect(() => compileSearch(query)).toThrow(SearchSyntaxError);
    expect(() => compileSearch(query)).toThrow(message);
  });
});
