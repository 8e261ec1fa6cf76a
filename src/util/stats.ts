/** Order statistics and rounding for measurements (benches, the export's latency note). */

/** The q-quantile (0…1) of `a`, linearly interpolated between order statistics; NaN when empty. */
export function quantile(a: readonly number[], q: number): number {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** The median (the mean of the middle two for an even count). */
export function median(a: readonly number[]): number {
  return quantile(a, 0.5);
}

/** `v` rounded to `d` decimals. */
export function round(v: number, d = 0): number {
  return Math.round(v * 10 ** d) / 10 ** d;
}
