/**
 * Pure helpers of the chart hover read-out (js/widgets/chart_overlay.ts): pixel ↔
 * data mapping from an axis' drawn ticks, nearest point, number formatting, and
 * tick-label thinning.
 */

/** One series as the kernel sends it: x sorted, y `null` where not finite. */
export interface ReadoutSeries {
  label: string;
  color: string;
  x: number[];
  y: (number | null)[];
  /** smoothed line (x sorted), when smoothing is on */
  sx?: number[];
  sy?: (number | null)[];
}

export interface AxisMap {
  toValue(px: number): number;
  toPx(value: number): number;
}

/**
 * The linear (or log) map through the first and last tick `[px, value]`;
 * null with fewer than two distinct ticks.
 */
export function axisMap(ticks: [number, number][], log = false): AxisMap | null {
  if (ticks.length < 2) return null;
  const [p0, a] = ticks[0];
  const [p1, b] = ticks[ticks.length - 1];
  const f = (v: number): number => (log ? Math.log10(v) : v);
  const g = (v: number): number => (log ? 10 ** v : v);
  const v0 = f(a);
  const v1 = f(b);
  if (p0 === p1 || v0 === v1 || !Number.isFinite(v0) || !Number.isFinite(v1)) return null;
  const k = (v1 - v0) / (p1 - p0);
  return {
    toValue: px => g(v0 + (px - p0) * k),
    toPx: value => p0 + (f(value) - v0) / k
  };
}

/** Index of the element of sorted `xs` nearest to `x` (-1 when empty). */
export function nearest(xs: number[], x: number): number {
  if (xs.length === 0) return -1;
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x) ? lo - 1 : lo;
}

/** A value as the y axes show it: up to 4 significant digits, no trailing zeros. */
export function formatNumber(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-4)) return v.toExponential(3).replace(/\.?0+e/, 'e');
  return Number(v.toPrecision(4)).toLocaleString('en-US', { maximumFractionDigits: 10 });
}

/** One row of the read-out: a series' value at the cursor's x. */
export interface ReadoutRow {
  label: string;
  color: string;
  x: number;
  value: number | null;
  smoothed: number | null;
}

/**
 * Every series' value at data x `x` (its nearest point), leaving out series
 * whose x range does not reach within `tolerance` of it; sorted by value, highest first.
 */
export function readout(series: ReadoutSeries[], x: number, tolerance: number): ReadoutRow[] {
  const rows: ReadoutRow[] = [];
  for (const s of series) {
    const i = nearest(s.x, x);
    if (i < 0 || x < s.x[0] - tolerance || x > s.x[s.x.length - 1] + tolerance) continue;
    let smoothed: number | null = null;
    if (s.sx && s.sy && s.sx.length) smoothed = s.sy[nearest(s.sx, s.x[i])] ?? null;
    rows.push({ label: s.label, color: s.color, x: s.x[i], value: s.y[i], smoothed });
  }
  const key = (r: ReadoutRow): number => r.smoothed ?? r.value ?? -Infinity;
  return rows.sort((a, b) => key(b) - key(a));
}

/**
 * Which of the labels (left/right pixel extents, in axis order) to keep so that
 * no two kept labels are closer than `gap` pixels: every k-th one, k as small as works.
 */
export function thinLabels(extents: [number, number][], gap = 8): boolean[] {
  for (let k = 1; k <= extents.length; k++) {
    let ok = true;
    let last: [number, number] | null = null;
    for (let i = 0; i < extents.length; i += k) {
      if (last && extents[i][0] < last[1] + gap) {
        ok = false;
        break;
      }
      last = extents[i];
    }
    if (ok) return extents.map((_, i) => i % k === 0);
  }
  return extents.map((_, i) => i === 0);
}
