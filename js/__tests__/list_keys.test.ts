import { describe, expect, it } from 'vitest';

import { applyListKey, type KeyLike, listKeyAction } from '../shared/list_keys';
import { Selection } from '../shared/selection';

const key = (k: string, mods: Partial<KeyLike> = {}): KeyLike => ({
  key: k,
  shiftKey: false,
  ctrlKey: false,
  metaKey: false,
  ...mods
});

describe('listKeyAction', () => {
  it('moves the focus within bounds', () => {
    expect(listKeyAction(key('ArrowDown'), -1, 5, 3)).toEqual({ kind: 'move', index: 0, extend: false });
    expect(listKeyAction(key('ArrowUp'), -1, 5, 3)).toEqual({ kind: 'move', index: 4, extend: false });
    expect(listKeyAction(key('ArrowDown'), 4, 5, 3)).toEqual({ kind: 'move', index: 4, extend: false });
    expect(listKeyAction(key('ArrowUp'), 0, 5, 3)).toEqual({ kind: 'move', index: 0, extend: false });
    expect(listKeyAction(key('End'), 1, 5, 3)).toEqual({ kind: 'move', index: 4, extend: false });
    expect(listKeyAction(key('Home', { shiftKey: true }), 3, 5, 3)).toEqual({ kind: 'move', index: 0, extend: true });
  });

  it('pages by a screen less one row', () => {
    expect(listKeyAction(key('PageDown'), 0, 100, 10)).toEqual({ kind: 'move', index: 9, extend: false });
    expect(listKeyAction(key('PageUp'), 50, 100, 10)).toEqual({ kind: 'move', index: 41, extend: false });
    expect(listKeyAction(key('PageDown'), 95, 100, 10)).toEqual({ kind: 'move', index: 99, extend: false });
    expect(listKeyAction(key('PageDown'), 0, 100, 1)).toEqual({ kind: 'move', index: 1, extend: false });
  });

  it('maps the other keys, and nothing in an empty list', () => {
    expect(listKeyAction(key(' '), 2, 5, 3)).toEqual({ kind: 'toggle' });
    expect(listKeyAction(key(' '), -1, 5, 3)).toBeNull();
    expect(listKeyAction(key('Enter'), 2, 5, 3)).toEqual({ kind: 'open' });
    expect(listKeyAction(key('Escape'), 2, 5, 3)).toEqual({ kind: 'clear' });
    expect(listKeyAction(key('Delete'), 2, 5, 3)).toEqual({ kind: 'delete' });
    expect(listKeyAction(key('a', { metaKey: true }), 2, 5, 3)).toEqual({ kind: 'all' });
    expect(listKeyAction(key('a'), 2, 5, 3)).toBeNull();
    expect(listKeyAction(key('x'), 2, 5, 3)).toBeNull();
    expect(listKeyAction(key('ArrowDown'), -1, 0, 3)).toBeNull();
  });
});

describe('applyListKey', () => {
  const order = ['a', 'b', 'c', 'd'];

  it('moves, extends from the anchor, toggles, selects all and clears', () => {
    const selection = new Selection();
    const apply = (k: KeyLike) => {
      const focus = selection.focus === null ? -1 : order.indexOf(selection.focus);
      const action = listKeyAction(k, focus, order.length, 2)!;
      expect(applyListKey(action, selection, order)).toBe(true);
      return [...selection.ids].sort();
    };
    expect(apply(key('ArrowDown'))).toEqual(['a']);
    expect(apply(key('ArrowDown'))).toEqual(['b']);
    expect(apply(key('ArrowDown', { shiftKey: true }))).toEqual(['b', 'c']);
    expect(apply(key('ArrowDown', { shiftKey: true }))).toEqual(['b', 'c', 'd']);
    expect(selection.focus).toBe('d');
    expect(apply(key(' '))).toEqual(['b', 'c']);
    expect(apply(key('a', { ctrlKey: true }))).toEqual(order);
    expect(apply(key('Escape'))).toEqual([]);
    expect(selection.focus).toBe('d');
  });

  it('leaves open and delete to the caller', () => {
    const selection = new Selection();
    expect(applyListKey({ kind: 'open' }, selection, order)).toBe(false);
    expect(applyListKey({ kind: 'delete' }, selection, order)).toBe(false);
  });

  it('forgets the focus of a run that is gone', () => {
    const selection = new Selection();
    selection.select('c', 'replace', order);
    selection.retain(id => id !== 'c');
    expect(selection.focus).toBeNull();
  });
});
