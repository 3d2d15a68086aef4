/** SVG path data for a sparkline; non-finite values break the line instead of vanishing silently. */

export function sparklinePath(values: readonly number[], width: number, height: number, pad = 1.5): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) {
    return '';
  }
  let min = Math.min(...finite);
  let max = Math.max(...finite);
  if (min === max) {
    min -= 1;
    max += 1;
  }
  const dx = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
  const scaleY = (height - 2 * pad) / (max - min);
  let path = '';
  let pen = false;
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) {
      pen = false;
      return;
    }
    const x = values.length > 1 ? pad + i * dx : width / 2;
    const y = height - pad - (v - min) * scaleY;
    path += `${pen ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)}`;
    pen = true;
  });
  return path;
}
