/**
 * The run query language, shared by the sidebar and the run table — the same
 * language `Api().runs(filters=…)`, the REST `filter` argument and `wanllm runs`
 * take (parsed in Python by `wanllm_jupyter/core/run_filters.py`; both are held to
 * `tests/filter_vectors.json`; docs/filters.md).
 *
 * A query is terms joined by `AND` (also `&&`, `&`, or just a space) and `OR`
 * (also `||`, `|`); AND binds tighter, so `a b OR c` means `(a AND b) OR c`.
 * A leading `-` negates a term. A term is
 * - a bare word: a case-insensitive substring of the name, notes or a tag, or a
 *   prefix of the id;
 * - `field<op>value`, op one of `: = != < <= > >= ~` (`:` and `~`: contains,
 *   case-insensitive); fields: `name state project notes host id exit_code
 *   created_at updated_at heartbeat_at finished_at git.<branch|commit|dirty|remote>`,
 *   `config.<path>`, `summary.<path>`, `metadata.<path>` (each dotted part a key),
 *   `tags` (`~`/`:`: has the tag) and `tag` (`tag:x`, `tag=x`, `tag~x`: has the tag
 *   x; `tag!=x`: has not).
 * The value is typed by its field: JSON (numbers, true/false, null, else text) for
 * config/summary/metadata, text for text columns; a quoted value (`name:"big run"`)
 * is always text. `=` and `!=` compare values of the same kind exactly (text is
 * case-sensitive), `< <= > >=` match only values of the literal's kind (numbers or
 * text), and a missing value equals only `null`.
 */

import type { Run } from './types';

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

type Op = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'contains';
type Kind = 'uuid' | 'int32' | 'time' | 'text' | 'bool' | 'json' | 'tags';

const OP_CHARS = ':=!<>~';
const OPS: [string, Op | 'colon'][] = [
  [':', 'colon'],
  ['>=', 'ge'],
  ['<=', 'le'],
  ['!=', 'ne'],
  ['=', 'eq'],
  ['<', 'lt'],
  ['>', 'gt'],
  ['~', 'contains']
];
const TIME_COLUMNS = ['created_at', 'updated_at', 'heartbeat_at', 'finished_at'];
const TEXT_COLUMNS = ['project', 'name', 'state', 'notes', 'host'];
const GIT_KEYS = ['branch', 'commit', 'dirty', 'remote'];
const JSON_FIELDS = ['config', 'summary', 'metadata'];
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const MISSING = undefined;

const q = (s: string): string => `'${s.slice(0, 300)}'`;

interface Token {
  text: string;
  /** 0: no quote; 1: a quoted value; 2: quoted from its start (a search word). */
  quoted: 0 | 1 | 2;
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
    let quoted: 0 | 1 | 2 = 0;
    while (i < query.length && !/\s/.test(query[i])) {
      const opens = query[i] === '"' && (text === '' || text === '-' || OP_CHARS.includes(text[text.length - 1]));
      if (opens) {
        const end = query.indexOf('"', i + 1);
        if (end < 0) {
          throw new SearchSyntaxError(`unterminated quote in ${q(query.slice(i))}`, query.slice(i));
        }
        quoted = Math.max(quoted, text === '' || text === '-' ? 2 : 1) as 0 | 1 | 2;
        text += query.slice(i + 1, end);
        i = end + 1;
      } else {
        text += query[i++];
      }
    }
    tokens.push({ text, quoted });
  }
  return tokens;
}

function fieldKind(field: string, raw: string): Kind {
  if (field === 'tags') {
    return 'tags';
  }
  if (field === 'id') {
    return 'uuid';
  }
  if (field === 'exit_code') {
    return 'int32';
  }
  if (TIME_COLUMNS.includes(field)) {
    return 'time';
  }
  if (TEXT_COLUMNS.includes(field)) {
    return 'text';
  }
  const dot = field.indexOf('.');
  const head = dot < 0 ? field : field.slice(0, dot);
  const rest = dot < 0 ? '' : field.slice(dot + 1);
  if (head === 'git' && GIT_KEYS.includes(rest)) {
    return rest === 'dirty' ? 'bool' : 'text';
  }
  if (!JSON_FIELDS.includes(head) || rest === '' || rest.split('.').some(p => p === '')) {
    throw new SearchSyntaxError(
      `filter ${q(raw)}: unknown field ${q(field)}: use a run column, git.<${GIT_KEYS.join('|')}>, ` +
        'tags, or config./summary./metadata.<path>',
      raw
    );
  }
  return 'json';
}

function jsonLiteral(raw: string): unknown {
  try {
    const v: unknown = JSON.parse(raw);
    return v !== null && typeof v === 'object' ? raw : v;
  } catch {
    return raw;
  }
}

/** The literal as the value compared with a field of `kind` (times in ms). */
function typed(kind: Kind, op: Op, raw: string, parsed: unknown, text: string): unknown {
  const fail = (why: string): never => {
    throw new SearchSyntaxError(`filter ${q(text)}: ${why}`, text);
  };
  if (parsed === null && op !== 'contains') {
    return null;
  }
  if (op === 'contains') {
    if (kind === 'time' || kind === 'bool') {
      fail(`~ is not supported on ${kind === 'time' ? 'times' : 'booleans'}`);
    }
    return typeof parsed === 'string' ? parsed : raw;
  }
  if (kind === 'tags') {
    return fail("the tags field supports only '~' with a tag");
  }
  if (kind === 'text') {
    return typeof parsed === 'string' ? parsed : raw;
  }
  if (kind === 'uuid') {
    if (typeof parsed !== 'string' || !UUID_RE.test(parsed)) {
      fail(typeof parsed === 'string' ? `not a UUID: ${q(parsed)}` : 'expected a run id (UUID)');
    }
    const hex = (parsed as string).replace(/-/g, '').toLowerCase();
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  if (kind === 'int32') {
    if (typeof parsed !== 'number' || !Number.isInteger(parsed) || Math.abs(parsed) > 2 ** 31) {
      fail(`expected an integer, got ${q(raw)}`);
    }
    return parsed;
  }
  if (kind === 'time') {
    const ms = typeof parsed === 'number' ? parsed * 1000 : typeof parsed === 'string' ? Date.parse(parsed) : NaN;
    return Number.isNaN(ms) ? fail(`expected a time (ISO 8601 or epoch seconds), got ${q(raw)}`) : ms;
  }
  if (kind === 'bool') {
    return typeof parsed === 'boolean' ? parsed : fail('expected true or false');
  }
  return parsed;
}

function getter(field: string, kind: Kind): (run: Run) => unknown {
  if (kind === 'time') {
    return run => {
      const v = run[field];
      return typeof v === 'string' ? Date.parse(v) : (v ?? null);
    };
  }
  if (field.startsWith('git.')) {
    return run => {
      const git = run.git as Record<string, unknown> | undefined;
      return git ? (git[field.slice(4)] ?? null) : null;
    };
  }
  if (kind !== 'json') {
    return run => run[field] ?? null;
  }
  const [head, ...parts] = field.split('.');
  return run => {
    let value: unknown = run[head];
    for (const part of parts) {
      if (value === null || typeof value !== 'object' || Array.isArray(value) || !(part in value)) {
        return MISSING;
      }
      value = (value as Record<string, unknown>)[part];
    }
    return value;
  };
}

const kindOf = (v: unknown): 'number' | 'string' | null =>
  typeof v === 'number' || typeof v === 'boolean' ? 'number' : typeof v === 'string' ? 'string' : null;
const asText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
const num = (v: unknown): unknown => (typeof v === 'boolean' ? Number(v) : v);

function equal(value: unknown, operand: unknown): boolean {
  if (value === null || value === undefined) {
    return operand === null;
  }
  return kindOf(value) !== null && kindOf(value) === kindOf(operand) && num(value) === num(operand);
}

function matches(value: unknown, op: Op, operand: unknown): boolean {
  if (op === 'eq') {
    return equal(value, operand);
  }
  if (op === 'ne') {
    return !equal(value, operand);
  }
  if (op === 'contains') {
    return value !== null && value !== undefined && asText(value).toLowerCase().includes(asText(operand).toLowerCase());
  }
  if (value === null || value === undefined || kindOf(value) === null || kindOf(value) !== kindOf(operand)) {
    return false;
  }
  const [a, b] = [num(value) as number | string, num(operand) as number | string];
  return op === 'lt' ? a < b : op === 'le' ? a <= b : op === 'gt' ? a > b : a >= b;
}

function compileFilter(text: string, quoted: boolean): RunPredicate {
  const at = [...text].findIndex(c => OP_CHARS.includes(c));
  const found = at > 0 ? OPS.find(([o]) => text.startsWith(o, at)) : undefined;
  if (!found) {
    throw new SearchSyntaxError(
      `filter ${q(text)}: expected <field><op><value> with op one of ${OPS.map(([o]) => o).join(' ')}`,
      text
    );
  }
  let field = text.slice(0, at);
  let op = found[1];
  const raw = text.slice(at + found[0].length);
  let negate = false;
  if (field === 'tag') {
    if (op !== 'colon' && op !== 'eq' && op !== 'contains' && op !== 'ne') {
      throw new SearchSyntaxError(`filter ${q(text)}: tag takes ':', '=', '~' or '!=' and a tag`, text);
    }
    [field, negate, op] = ['tags', op === 'ne', 'contains'];
  } else if (op === 'colon') {
    op = 'contains';
  }
  const kind = fieldKind(field, text);
  const parsed = quoted ? raw : jsonLiteral(raw);
  const value = typed(kind, op, raw, parsed, text);
  if (value === null && op !== 'eq' && op !== 'ne') {
    throw new SearchSyntaxError(`filter ${q(text)}: null is only allowed with = or !=`, text);
  }
  let test: RunPredicate;
  if (kind === 'tags') {
    test = run => (run.tags ?? []).includes(value as string);
  } else {
    const get = getter(field, kind);
    test = run => matches(get(run), op, value);
  }
  return negate ? run => !test(run) : test;
}

function compileWord(word: string): RunPredicate {
  const needle = word.toLowerCase();
  return run =>
    (run.name ?? '').toLowerCase().includes(needle) ||
    (run.notes ?? '').toLowerCase().includes(needle) ||
    (run.tags ?? []).some(t => t.toLowerCase().includes(needle)) ||
    String(run.id ?? '')
      .toLowerCase()
      .startsWith(needle);
}

function compileTerm(token: Token): RunPredicate {
  const negate = token.text.startsWith('-') && token.text.length > 1;
  const body = negate ? token.text.slice(1) : token.text;
  const isWord = token.quoted === 2 || ![...body.slice(1)].some(c => OP_CHARS.includes(c));
  const predicate = isWord ? compileWord(body) : compileFilter(body, token.quoted === 1);
  return negate ? run => !predicate(run) : predicate;
}

const OR = new Set(['OR', '||', '|']);
const AND = new Set(['AND', '&&', '&']);

/** Compile a query into a predicate; an empty query matches every run. */
export function compileSearch(query: string): RunPredicate {
  const groups: RunPredicate[][] = [[]];
  let pendingJoin: string | null = null;
  for (const token of tokenize(query)) {
    const word = token.quoted ? '' : token.text.toUpperCase();
    if (OR.has(word) || AND.has(word)) {
      if (groups[groups.length - 1].length === 0 || pendingJoin) {
        throw new SearchSyntaxError(`'${token.text}' needs a term before it`, token.text);
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
    throw new SearchSyntaxError(`'${pendingJoin}' needs a term after it`, pendingJoin);
  }
  if (groups.length === 1 && groups[0].length === 0) {
    return () => true;
  }
  return run => groups.some(group => group.every(p => p(run)));
}
