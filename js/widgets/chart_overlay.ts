/**
 * The chart overlay anywidget, placed inside a metric chart (`.wl-chart`) next to
 * its bqplot figure. Entirely in the browser, so it works while the logging cell
 * still runs:
 *
 * - hover read-out: a crosshair at the cursor's x, a dot on every series and a
 *   box naming each series (run · metric) with its value there;
 * - zoom by dragging across the plot (x range), double-click resets; the mouse
 *   wheel is left alone, so it scrolls the page;
 * - x tick labels thinned when they would run together (narrow charts).
 *
 * Pixel ↔ data mapping comes from the axes' drawn ticks (d3 binds each tick's
 * value to its element), so it follows zoom and resizes without asking bqplot.
 *
 * Model traits: `series` (ReadoutSeries[] + `side`), `x_kind` ("number" |
 * "date"), `x_name`, `y_log`, `x_scale` (widget reference of the x scale).
 */

import type { RenderProps } from '@anywidget/types';

import { type AxisMap, axisMap, formatNumber, readout, type ReadoutSeries, thinLabels } from '../shared/readout';
import './chart_overlay.css';

interface OverlaySeries extends ReadoutSeries {
  side?: 'left' | 'right';
}

interface OverlayModel {
  series: OverlaySeries[];
  x_kind: string;
  x_name: string;
  y_log: boolean;
  x_scale: string | null;
}

const MAX_ROWS = 12;
const DRAG_MIN_PX = 6;

function div(className: string): HTMLDivElement {
  const node = document.createElement('div');
  node.className = className;
  return node;
}

interface Axes {
  plot: DOMRect;
  x: AxisMap | null;
  left: AxisMap | null;
  right: AxisMap | null;
}

/** Tick [pixel, value] pairs of one bqplot axis, and whether it is horizontal. */
function ticksOf(axis: Element): { horizontal: boolean; ticks: [number, number][] } {
  const ticks: [number, number][] = [];
  let horizontal = true;
  for (const tick of axis.querySelectorAll('g.tick')) {
    const line = tick.querySelector('line');
    const datum = (tick as unknown as { __data__?: unknown }).__data__;
    if (!line || datum === undefined || (tick as SVGGElement).style.display === 'none') continue;
    const r = line.getBoundingClientRect();
    horizontal = r.height >= r.width;
    const value = datum instanceof Date ? datum.getTime() : Number(datum);
    ticks.push([horizontal ? r.left + r.width / 2 : r.top + r.height / 2, value]);
  }
  return { horizontal, ticks };
}

function readAxes(fig: Element, yLog: boolean): Axes | null {
  const bg = fig.querySelector('.plotarea_background');
  if (!bg) return null;
  const plot = bg.getBoundingClientRect();
  const axes: Axes = { plot, x: null, left: null, right: null };
  for (const axis of fig.querySelectorAll('g.axis')) {
    if (!axis.querySelector('g.tick')) continue;
    const { horizontal, ticks } = ticksOf(axis);
    if (horizontal) {
      axes.x ??= axisMap(ticks);
    } else {
      const r = axis.getBoundingClientRect();
      const map = axisMap(ticks, yLog);
      if (r.right > plot.right + 1) axes.right ??= map;
      else axes.left ??= map;
    }
  }
  return axes;
}

/** Hide x tick labels that would run into each other. */
function thinXTicks(fig: Element): void {
  for (const axis of fig.querySelectorAll('g.axis')) {
    const texts = [...axis.querySelectorAll('g.tick text')] as SVGTextElement[];
    if (texts.length < 2) continue;
    texts.forEach(t => (t.style.visibility = ''));
    const rects = texts.map(t => t.getBoundingClientRect());
    if (rects.some(r => r.width === 0)) continue;
    if (rects[0].height === 0 || Math.abs(rects[0].top - rects[1].top) > 1) continue; // vertical axis
    const keep = thinLabels(rects.map(r => [r.left, r.right]));
    texts.forEach((t, i) => (t.style.visibility = keep[i] ? '' : 'hidden'));
  }
}

function formatX(x: number, kind: string): string {
  if (kind === 'date') return new Date(x).toLocaleTimeString();
  return formatNumber(x);
}

function render({ model, el }: RenderProps<OverlayModel>): () => void {
  el.classList.add('wl-overlay');
  const line = div('wl-crosshair');
  const tip = div('wl-readout');
  const box = div('wl-zoombox');
  const dots: HTMLDivElement[] = [];
  let chart: HTMLElement | null = null;
  let drag: number | null = null;
  let observer: MutationObserver | null = null;
  let thinPending = false;

  const figure = (): Element | null => chart?.querySelector('.bqplot') ?? null;

  const hide = (): void => {
    line.style.display = tip.style.display = 'none';
    dots.forEach(d => (d.style.display = 'none'));
  };

  const dot = (i: number): HTMLDivElement => {
    while (dots.length <= i) {
      const d = div('wl-dot');
      dots.push(d);
      chart?.append(d);
    }
    return dots[i];
  };

  /** The part of the x scale's widget model (bqplot's LinearScale/DateScale) used here. */
  interface ScaleModel {
    set(values: { min: number | Date | null; max: number | Date | null }): void;
    save_changes(): void;
  }
  const setXRange = async (lo: number | null, hi: number | null): Promise<void> => {
    const ref = model.get('x_scale');
    if (!ref) return;
    const manager = (model as unknown as { widget_manager: { get_model(id: string): Promise<ScaleModel> } })
      .widget_manager;
    const scale = await manager.get_model(ref.replace(/^IPY_MODEL_/, ''));
    const date = model.get('x_kind') === 'date';
    const conv = (v: number | null): number | Date | null => (v === null ? null : date ? new Date(v) : v);
    scale.set({ min: conv(lo), max: conv(hi) });
    scale.save_changes();
  };

  const onMove = (ev: MouseEvent): void => {
    const fig = figure();
    if (!chart || !fig || !fig.contains(ev.target as Node)) return hide();
    const axes = readAxes(fig, model.get('y_log'));
    if (!axes || !axes.x) return hide();
    const { plot } = axes;
    const base = chart.getBoundingClientRect();
    if (drag !== null) {
      const x0 = Math.max(plot.left, Math.min(drag, ev.clientX));
      const x1 = Math.min(plot.right, Math.max(drag, ev.clientX));
      Object.assign(box.style, {
        display: 'block',
        left: `${x0 - base.left}px`,
        width: `${x1 - x0}px`,
        top: `${plot.top - base.top}px`,
        height: `${plot.height}px`
      });
    }
    if (ev.clientX < plot.left || ev.clientX > plot.right || ev.clientY < plot.top || ev.clientY > plot.bottom) {
      return hide();
    }
    const x = axes.x.toValue(ev.clientX);
    const span = Math.abs(axes.x.toValue(plot.right) - axes.x.toValue(plot.left));
    const series = model.get('series') || [];
    const rows = readout(series, x, span * 0.02);
    Object.assign(line.style, {
      display: 'block',
      left: `${ev.clientX - base.left}px`,
      top: `${plot.top - base.top}px`,
      height: `${plot.height}px`
    });
    dots.forEach(d => (d.style.display = 'none'));
    if (!rows.length) {
      tip.style.display = 'none';
      return;
    }
    const sides = new Map(series.map(s => [s.label, s.side ?? 'left']));
    rows.forEach((row, i) => {
      const yMap = sides.get(row.label) === 'right' ? axes.right : axes.left;
      const y = row.smoothed ?? row.value;
      if (!yMap || y === null || !Number.isFinite(y)) return;
      const py = yMap.toPx(y);
      if (py < plot.top || py > plot.bottom) return;
      const px = axes.x!.toPx(row.x);
      Object.assign(dot(i).style, {
        display: 'block',
        left: `${px - base.left}px`,
        top: `${py - base.top}px`,
        background: row.color
      });
    });
    tip.replaceChildren();
    const head = div('wl-readout-head');
    const smoothed = rows.some(r => r.smoothed !== null) ? ' · smoothed (raw)' : '';
    head.textContent = `${model.get('x_name')} ${formatX(rows[0].x, model.get('x_kind'))}${smoothed}`;
    tip.append(head);
    for (const row of rows.slice(0, MAX_ROWS)) {
      const r = div('wl-readout-row');
      const sw = document.createElement('span');
      sw.className = 'wl-swatch';
      sw.style.background = row.color;
      const name = document.createElement('span');
      name.className = 'wl-readout-name';
      name.textContent = row.label;
      const value = document.createElement('span');
      value.className = 'wl-readout-value';
      value.textContent =
        row.smoothed !== null ? `${formatNumber(row.smoothed)} (${formatNumber(row.value)})` : formatNumber(row.value);
      r.append(sw, name, value);
      tip.append(r);
    }
    if (rows.length > MAX_ROWS) {
      const more = div('wl-readout-more');
      more.textContent = `+${rows.length - MAX_ROWS} more`;
      tip.append(more);
    }
    tip.style.display = 'block';
    const w = tip.offsetWidth;
    const left = ev.clientX - base.left + 14;
    tip.style.left = `${left + w > base.width ? Math.max(0, ev.clientX - base.left - 14 - w) : left}px`;
    tip.style.top = `${plot.top - base.top + 4}px`;
  };

  const onDown = (ev: MouseEvent): void => {
    const fig = figure();
    if (ev.button !== 0 || !fig || !fig.contains(ev.target as Node)) return;
    const bg = fig.querySelector('.plotarea_background');
    const plot = bg?.getBoundingClientRect();
    if (
      !plot ||
      ev.clientX < plot.left ||
      ev.clientX > plot.right ||
      ev.clientY < plot.top ||
      ev.clientY > plot.bottom
    ) {
      return;
    }
    drag = ev.clientX;
    ev.preventDefault();
  };

  const onUp = (ev: MouseEvent): void => {
    if (drag === null) return;
    const start = drag;
    drag = null;
    box.style.display = 'none';
    const fig = figure();
    const axes = fig && readAxes(fig, model.get('y_log'));
    if (!axes?.x || Math.abs(ev.clientX - start) < DRAG_MIN_PX) return;
    const a = axes.x.toValue(Math.max(axes.plot.left, Math.min(start, ev.clientX)));
    const b = axes.x.toValue(Math.min(axes.plot.right, Math.max(start, ev.clientX)));
    void setXRange(a, b);
  };

  const onDblClick = (ev: MouseEvent): void => {
    const fig = figure();
    if (fig && fig.contains(ev.target as Node)) void setXRange(null, null);
  };

  const scheduleThin = (): void => {
    if (thinPending) return;
    thinPending = true;
    requestAnimationFrame(() => {
      thinPending = false;
      const fig = figure();
      if (fig) thinXTicks(fig);
    });
  };

  let tries = 0;
  const attach = (): void => {
    chart = el.closest('.wl-chart');
    if (!chart || !figure()) {
      if (tries++ < 200) setTimeout(attach, 50);
      return;
    }
    chart.classList.add('wl-has-overlay');
    chart.append(line, box, tip);
    chart.addEventListener('mousemove', onMove);
    chart.addEventListener('mouseleave', hide);
    chart.addEventListener('mousedown', onDown);
    chart.addEventListener('dblclick', onDblClick);
    window.addEventListener('mouseup', onUp);
    observer = new MutationObserver(scheduleThin);
    observer.observe(figure()!, { subtree: true, childList: true, attributes: true, attributeFilter: ['transform'] });
    scheduleThin();
  };
  attach();

  return () => {
    observer?.disconnect();
    window.removeEventListener('mouseup', onUp);
    if (chart) {
      chart.removeEventListener('mousemove', onMove);
      chart.removeEventListener('mouseleave', hide);
      chart.removeEventListener('mousedown', onDown);
      chart.removeEventListener('dblclick', onDblClick);
    }
    [line, box, tip, ...dots].forEach(n => n.remove());
  };
}

export default { render };
