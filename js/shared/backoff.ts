/** Reconnect delay: exponential from `base` ms, capped at `max`, with ±20 % jitter. */
export function backoffDelay(attempt: number, base = 500, max = 30_000, random: () => number = Math.random): number {
  const raw = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(raw * (0.8 + 0.4 * random()));
}
