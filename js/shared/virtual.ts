/** A fixed-row-height virtualised list: only the rows in view (plus overscan) exist in the DOM. */

/** The half-open row range `[start, end)` to render for a scroll position. */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  count: number,
  overscan = 6
): [number, number] {
  if (count <= 0 || rowHeight <= 0) {
    return [0, 0];
  }
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const last = Math.ceil((Math.max(0, scrollTop) + Math.max(0, viewportHeight)) / rowHeight);
  return [Math.max(0, Math.min(first - overscan, count)), Math.min(count, last + overscan)];
}

export type RenderRow = (index: number, row: HTMLElement) => void;

/**
 * Renders `count` rows of `rowHeight` px into `viewport` (which must scroll).
 * Row elements are recycled; call `refresh()` after the data changes.
 */
export class VirtualList {
  readonly viewport: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly rows = new Map<number, HTMLElement>();
  private count = 0;
  private frame = 0;

  constructor(
    viewport: HTMLElement,
    private rowHeight: number,
    private readonly render: RenderRow,
    private readonly rowClass: string
  ) {
    this.viewport = viewport;
    this.spacer = document.createElement('div');
    this.spacer.style.position = 'relative';
    this.spacer.style.width = '100%';
    viewport.appendChild(this.spacer);
    viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
  }

  /** Set the row count and re-render every row in view. */
  setCount(count: number): void {
    this.count = count;
    this.spacer.style.height = `${count * this.rowHeight}px`;
    for (const row of this.rows.values()) {
      row.remove();
    }
    this.rows.clear();
    this.update();
  }

  /** Change the row height (re-lays out every row). */
  setRowHeight(rowHeight: number): void {
    if (rowHeight !== this.rowHeight) {
      this.rowHeight = rowHeight;
      this.setCount(this.count);
    }
  }

  /** Re-render the rows in view without changing the count. */
  refresh(): void {
    for (const [index, row] of this.rows) {
      this.render(index, row);
    }
  }

  /** Scroll so that row `index` is visible, also below a sticky header placed before the rows. */
  scrollToRow(index: number): void {
    const top = index * this.rowHeight;
    const bottom = this.spacer.offsetTop + top + this.rowHeight;
    if (top < this.viewport.scrollTop) {
      this.viewport.scrollTop = top;
    } else if (bottom > this.viewport.scrollTop + this.viewport.clientHeight) {
      this.viewport.scrollTop = bottom - this.viewport.clientHeight;
    }
  }

  /** The indices currently rendered. */
  renderedIndices(): number[] {
    return [...this.rows.keys()].sort((a, b) => a - b);
  }

  private schedule(): void {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.update();
      });
    }
  }

  /** Add rows that scrolled into view, drop those that left it. */
  update(): void {
    const height = this.viewport.clientHeight || 600;
    const [start, end] = visibleRange(this.viewport.scrollTop, height, this.rowHeight, this.count);
    for (const [index, row] of this.rows) {
      if (index < start || index >= end) {
        row.remove();
        this.rows.delete(index);
      }
    }
    for (let index = start; index < end; index++) {
      if (!this.rows.has(index)) {
        const row = document.createElement('div');
        row.className = this.rowClass;
        row.style.position = 'absolute';
        row.style.left = '0';
        row.style.right = '0';
        row.style.top = `${index * this.rowHeight}px`;
        row.style.height = `${this.rowHeight}px`;
        row.dataset.index = String(index);
        this.render(index, row);
        this.spacer.appendChild(row);
        this.rows.set(index, row);
      }
    }
  }
}
