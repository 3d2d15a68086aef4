/**
 * How a live subscriber follows a run's sequence numbers (docs/api.md, "Live message ordering");
 * mirrors wanllm_jupyter/core/live_seq.py. A `metrics` message carries `seq: [first, last]`; a
 * `first` past the last number seen + 1 reveals a hole (treat it like a `gap`: re-query), a
 * `last` already seen is a replay (drop it). A `gap` with `seq` accounts for the numbers up to it.
 */
export class LiveSequence {
  last: number | null = null;

  /** For a metrics message: apply its points unless a replay; `gap` when numbers before it were missed. */
  metrics(seq: unknown): { apply: boolean; gap: boolean } {
    if (!Array.isArray(seq) || seq.length !== 2 || !seq.every(Number.isInteger)) {
      return { apply: true, gap: false }; // a server without sequence numbers
    }
    const [first, last] = seq as [number, number];
    if (this.last !== null && last <= this.last) {
      return { apply: false, gap: false };
    }
    const gap = this.last !== null && first > this.last + 1;
    this.last = last;
    return { apply: true, gap };
  }

  /** Note a gap notice (the subscriber re-queries). */
  gap(seq: unknown): void {
    if (Number.isInteger(seq) && (this.last === null || (seq as number) > this.last)) {
      this.last = seq as number;
    }
  }

  /** A new socket: nothing seen yet. */
  reset(): void {
    this.last = null;
  }
}
