/** Keyboard navigation of a selectable list, free of DOM: what a key press means. */

import type { Selection } from './selection';

export type ListKeyAction =
  | { kind: 'move'; index: number; extend: boolean }
  | { kind: 'toggle' }
  | { kind: 'open' }
  | { kind: 'all' }
  | { kind: 'clear' }
  | { kind: 'delete' };

export interface KeyLike {
  key: string;
  shiftKey: boolean;
  ctrlKey: boolean;
  metaKey: boolean;
}

/**
 * The action for `event` in a list of `count` rows whose focused row is
 * `focus` (-1 when none), `page` rows fitting in view; null for keys the list
 * does not handle. Arrows, Home/End and PageUp/PageDown move the focus (and the
 * selection; Shift extends it), Space toggles, Enter opens, Ctrl/Cmd+A selects
 * all, Escape clears, Delete/Backspace deletes.
 */
export function listKeyAction(event: KeyLike, focus: number, count: number, page: number): ListKeyAction | null {
  if (count <= 0) {
    return null;
  }
  const last = count - 1;
  const step = Math.max(1, page - 1);
  const move = (index: number): ListKeyAction => ({
    kind: 'move',
    index: Math.min(last, Math.max(0, index)),
    extend: event.shiftKey
  });
  switch (event.key) {
    case 'ArrowDown':
      return move(focus < 0 ? 0 : focus + 1);
    case 'ArrowUp':
      return move(focus < 0 ? last : focus - 1);
    case 'Home':
      return move(0);
    case 'End':
      return move(last);
    case 'PageDown':
      return move(focus < 0 ? 0 : focus + step);
    case 'PageUp':
      return move(focus < 0 ? 0 : focus - step);
    case ' ':
      return focus < 0 ? null : { kind: 'toggle' };
    case 'Enter':
      return focus < 0 ? null : { kind: 'open' };
    case 'Escape':
      return { kind: 'clear' };
    case 'Delete':
    case 'Backspace':
      return { kind: 'delete' };
    case 'a':
    case 'A':
      return event.ctrlKey || event.metaKey ? { kind: 'all' } : null;
    default:
      return null;
  }
}

/**
 * Apply the selection part of `action` (move, toggle, all, clear) to
 * `selection` over the ids `order` in display order. Returns true when it
 * handled the action; `open` and `delete` are left to the caller.
 */
export function applyListKey(action: ListKeyAction, selection: Selection, order: readonly string[]): boolean {
  switch (action.kind) {
    case 'move':
      selection.select(order[action.index], action.extend ? 'range' : 'replace', order);
      return true;
    case 'toggle':
      if (selection.focus !== null) {
        selection.select(selection.focus, 'toggle', order);
      }
      return true;
    case 'all':
      selection.set(order);
      return true;
    case 'clear':
      selection.clear();
      return true;
    default:
      return false;
  }
}
