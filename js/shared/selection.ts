/**
 * List selection with the usual click semantics: replace, ctrl/cmd toggles, shift
 * extends from the anchor. `focus` is the row last clicked or moved to by keyboard.
 */

export type SelectMode = 'replace' | 'toggle' | 'range';

export class Selection {
  readonly ids = new Set<string>();
  focus: string | null = null;
  private anchor: string | null = null;

  /** Apply a click on `id`; `order` is the ids in display order (for ranges). */
  select(id: string, mode: SelectMode, order: readonly string[]): void {
    this.focus = id;
    if (mode === 'toggle') {
      if (!this.ids.delete(id)) {
        this.ids.add(id);
      }
      this.anchor = id;
      return;
    }
    if (mode === 'range' && this.anchor !== null) {
      const from = order.indexOf(this.anchor);
      const to = order.indexOf(id);
      if (from >= 0 && to >= 0) {
        this.ids.clear();
        for (let i = Math.min(from, to); i <= Math.max(from, to); i++) {
          this.ids.add(order[i]);
        }
        return;
      }
    }
    this.ids.clear();
    this.ids.add(id);
    this.anchor = id;
  }

  /** Replace the selection (e.g. from Python); keeps the anchor if still selected. */
  set(ids: Iterable<string>): void {
    this.ids.clear();
    for (const id of ids) {
      this.ids.add(id);
    }
    if (this.anchor !== null && !this.ids.has(this.anchor)) {
      this.anchor = null;
    }
  }

  /** Drop ids that no longer exist. */
  retain(exists: (id: string) => boolean): void {
    this.set([...this.ids].filter(exists));
    if (this.focus !== null && !exists(this.focus)) {
      this.focus = null;
    }
  }

  clear(): void {
    this.set([]);
  }
}
