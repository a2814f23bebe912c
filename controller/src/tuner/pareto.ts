/**
 * Intra-stage dual-objective selection (research/mist.md §4): among the candidate rows of one stage that fit in
 * memory, keep the points that minimise (stable, delta/G).
 *
 * - Weighted-sum sampling (Mist's default): s weights α from linspace(0, 1, s + 2) without the ends, each picking
 *   argmin (α/(1−α))·stable + delta/G; we add the two extreme weights (min stable, then min delta) so the
 *   fastest steady state is always among the samples. Only supported (convex-hull) Pareto points are found.
 * - Exact fronts (the exhaustive space): every non-dominated point.
 *
 * Pure: no I/O, no clock, no randomness.
 */

/** Weights on `stable` (the `delta/G` weight is 1): Mist's α/(1−α) for s samples plus the two extremes. */
export function sampleWeights(samples: number): Float64Array {
  const s = Math.max(1, Math.floor(samples));
  const w: number[] = [1e9, 1e-9];
  for (let k = 1; k <= s; k++) {
    const a = k / (s + 1);
    w.push(a / (1 - a));
  }
  return Float64Array.from(w);
}

/**
 * Non-dominated subset of points (x, y) (both minimised), as indices sorted by x ascending with y strictly
 * descending. Ties in x keep the smaller y.
 */
export function paretoFront(xs: ArrayLike<number>, ys: ArrayLike<number>, idx?: number[]): number[] {
  const order = idx ? [...idx] : Array.from({ length: xs.length }, (_, i) => i);
  order.sort((a, b) => xs[a]! - xs[b]! || ys[a]! - ys[b]! || a - b);
  const keep: number[] = [];
  let bestY = Infinity;
  for (const i of order) {
    if (ys[i]! < bestY) {
      keep.push(i);
      bestY = ys[i]!;
    }
  }
  return keep;
}

/** A growable list of (x, y, tag) points reduced to its Pareto front on demand. */
export class FrontBuilder {
  xs: number[] = [];
  ys: number[] = [];
  tags: number[] = [];

  add(x: number, y: number, tag: number): void {
    this.xs.push(x);
    this.ys.push(y);
    this.tags.push(tag);
    if (this.xs.length > 4096) this.compact();
  }

  compact(): void {
    const keep = paretoFront(this.xs, this.ys);
    this.xs = keep.map((i) => this.xs[i]!);
    this.ys = keep.map((i) => this.ys[i]!);
    this.tags = keep.map((i) => this.tags[i]!);
  }

  /** The front (sorted by x). */
  points(): Array<{ x: number; y: number; tag: number }> {
    this.compact();
    return this.xs.map((x, i) => ({ x, y: this.ys[i]!, tag: this.tags[i]! }));
  }
}

/** Keep at most `max` points of a sorted front, evenly spread, always keeping both ends. */
export function thinFront<T>(front: T[], max: number): T[] {
  if (front.length <= max || max < 2) return front;
  const out: T[] = [];
  for (let k = 0; k < max; k++) out.push(front[Math.round((k * (front.length - 1)) / (max - 1))]!);
  return out.filter((p, i) => i === 0 || p !== out[i - 1]);
}
