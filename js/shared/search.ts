/**
 * The run search language, shared by the sidebar and the run table.
 *
 * A query is terms joined by `AND` (also `&&`, or just a space) and `OR`
 * (also `||`); AND binds tighter, so `a b OR c` means `(a AND b) OR c`.
 * A term is a bare word (matches name, id, tags and config values), or
 * `field<op>value` with field `name`, `id`, `state`, `tag`, `project`,
 * `config.<key>` or `summary.<key>` and op `:` (contains; tag: exact),
 * `=`, `!=`, `~` (contains), `<`, `<=`, `>`, `>=` (numeric). A leading `-`
 * negates a term. Double quotes keep spaces: `name:"big run"`.
 */

import type { Run } from './types';
import { getPath, wireNumber } from './values';

/** A query that cannot be parsed; `term` names the offending piece. */
export class SearchSyntaxError extends Error {
  constructor(
    message: string,
    readonly term: string
  ) {
    super(message);
    this.name = 'SearchSyntaxError';
  }
}

export type RunPredicate = (run: Run) => boolean;

type Op = ':' | '=' | '!=' | '~' | '<' | '<=' | '>' | '>=';

const FIELDS = ['name', 'id', 'state', 'tag', 'project'];
const TERM_RE = /^([A-Za-z_][\w.\-/]*?)(!=|<=|>=|=|<|>|~|:)(.*)$/s;

interface Token {
  text: string;
  quoted: boolean;
}

function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < query.length) {
    if (/\s/.test(query[i])) {
      i++;
      continue;
    }
    let text = '';
    let quoted = false;
    while (i < query.length && !/\s/.test(query[i])) {
      if (query[i] === '"') {
        const end = query.indexOf('"', i + 1);
        if (end < 0) {
          throw new SearchSyntaxError(`unterminated quote in ${JSON.stringify(query.slice(i))}`, query.slice(i));
        }
        text += query.slice(i + 1, end);
        quoted = true;
        i = end + 1;
      } else {
        text += query[i++];
      }
    }
    tokens.push({ text, quoted });
  }
  return tokens;
}

const lower = (v: unknown): string => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)).toLowerCase();

function valuesEqual(actual: unknown, expected: string): boolean {
  if (actual === null || actual === undefined) {
    return false;
  }
  const a = wireNumber(actual);
  const e = Number(expected);
  if (a !== null && expected.trim() !== '' && !Number.isNaN(e)) {
    return a === e;
  }
  if (typeof actual === 'boolean') {
    return String(actual) === expected.toLowerCase();
  }
  return lower(actual) === expected.toLowerCase();
}

function fieldValue(run: Run, field: string): unknown {
  if (field.startsWith('config.')) {
    return getPath(run.config, field.slice(7));
  }
  if (field.startsWith('summary.')) {
    return getPath(run.summary, field.slice(8));
  }
  return field === 'tag' ? run.tags : run[field];
}

function compileField(field: string, op: Op, value: string, raw: string): RunPredicate {
  if (!FIELDS.includes(field) && !/^(config|summary)\.\S+$/.test(field)) {
    throw new SearchSyntaxError(
      `unknown field "${field}" in ${JSON.stringify(raw)} (use name, id, state, tag, project, config.<key> or summary.<key>)`,
      raw
    );
  }
  if (value === '') {
    throw new SearchSyntaxError(`missing value after "${field}${op}"`, raw);
  }
  if (op === '<' || op === '<=' || op === '>' || op === '>=') {
    const bound = Number(value);
    if (Number.isNaN(bound)) {
      throw new SearchSyntaxError(`"${op}" needs a number, got ${JSON.stringify(value)} in ${JSON.stringify(raw)}`, raw);
    }
    return run => {
      const n = wireNumber(fieldValue(run, field));
      if (n === null || Number.isNaN(n)) {
        return false;
      }
      return op === '<' ? n < bound : op === '<=' ? n <= bound : op === '>' ? n > bound : n >= bound;
    };
  }
  const needle = value.toLowerCase();
  if (field === 'tag') {
    const match = (tags: string[]) =>
      op === '~' ? tags.some(t => t.toLowerCase().includes(needle)) : tags.some(t => t.toLowerCase() === needle);
    return op === '!=' ? run => !match(run.tags) : run => match(run.tags);
  }
  if (op === ':' || op === '~') {
    return run => {
      const v = fieldValue(run, field);
      return v !== null && v !== undefined && lower(v).includes(needle);
    };
  }
  const eq: RunPredicate = run => valuesEqual(fieldValue(run, field), value);
  return op === '!=' ? run => !eq(run) : eq;
}

function configValues(config: Record<string, unknown>, out: string[]): string[] {
  for (const v of Object.values(config)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      configValues(v as Record<string, unknown>, out);
    } else {
      out.push(lower(v));
    }
  }
  return out;
}

function compileWord(word: string): RunPredicate {
  const needle = word.toLowerCase();
  return run =>
    run.name.toLowerCase().includes(needle) ||
    run.id.toLowerCase().startsWith(needle) ||
    run.tags.some(t => t.toLowerCase().includes(needle)) ||
    configValues(run.config, []).some(v => v.includes(needle));
}

function compileTerm(token: Token): RunPredicate {
  let text = token.text;
  const negate = text.startsWith('-') && text.length > 1;
  if (negate) {
    text = text.slice(1);
  }
  const m = TERM_RE.exec(text);
  const predicate = m ? compileField(m[1], m[2] as Op, m[3], token.text) : compileWord(text);
  return negate ? run => !predicate(run) : predicate;
}

const OR = new Set(['OR', '||', '|']);
const AND = new Set(['AND', '&&', '&']);

/** Compile a query into a predicate; an empty query matches every run. */
export function compileSearch(query: string): RunPredicate {
  const tokens = tokenize(query);
  const groups: RunPredicate[][] = [[]];
  let pendingJoin: string | null = null;
  for (const token of tokens) {
    const word = token.quoted ? '' : token.text.toUpperCase();
    if (OR.has(word) || AND.has(word)) {
      if (groups[groups.length - 1].length === 0 || pendingJoin) {
        throw new SearchSyntaxError(`"${token.text}" needs a term before it`, token.text);
      }
      pendingJoin = token.text;
      if (OR.has(word)) {
        groups.push([]);
      }
      continue;
    }
    groups[groups.length - 1].push(compileTerm(token));
    pendingJoin = null;
  }
  if (pendingJoin) {
    throw new SearchSyntaxError(`"${pendingJoin}" needs a term after it`, pendingJoin);
  }
  if (groups.length === 1 && groups[0].length === 0) {
    return () => true;
  }
  return run => groups.some(group => group.every(p => p(run)));
}
