/**
 * A discrete-event simulation of pipeline schedules, to check the tuner's closed-form iteration times against.
 *
 * Ops: F (forward), B (input-gradient backward), W (the deferred weight-gradient backward of a micro-batch whose B
 * ran without it) and BW (a whole backward: B then W at once). A forward of micro-batch m needs that micro-batch's
 * forward on the stage before; a backward (B or BW) needs its own forward and the input gradient (B or BW) of the
 * stage after; W needs its own B. Each stage runs its ops in the given order, one at a time. A transfer across
 * boundary s (between stages s and s + 1) takes `transfer[s]` seconds (default 0) and runs asynchronously: the
 * sender goes on computing, the receiver's op waits for the arrival.
 */
export type Op = ['F' | 'B' | 'W' | 'BW', number];

export interface StageTimes {
  forward: readonly number[];
  /** Input-gradient part of the backward. */
  backward: readonly number[];
  /** Weight-gradient part of the backward (0 when it is not split). */
  weight: readonly number[];
  /** Per boundary (S − 1 entries): seconds one activation or gradient takes to cross it. */
  transfer?: readonly number[];
}

/**
 * Megatron's non-interleaved 1F1B: min(S − s − 1, G) warm-up forwards, then one forward one backward, then the
 * drain. With `split` every backward is B then W (its input gradient leaves after B), else one BW op.
 */
export function order1F1B(S: number, s: number, G: number, split = false): Op[] {
  const warm = Math.min(S - s - 1, G);
  const ops: Op[] = [];
  let f = 0;
  for (; f < warm; f++) ops.push(['F', f]);
  for (let b = 0; b < G; b++) {
    if (f < G) ops.push(['F', f++]);
    if (split) ops.push(['B', b], ['W', b]);
    else ops.push(['BW', b]);
  }
  return ops;
}

/** Iteration time of running `orders[s]` on every stage s with the given per-stage op times. */
export function simulate(orders: readonly Op[][], t: StageTimes, G: number): number {
  const S = orders.length;
  const endF = Array.from({ length: S }, () => new Array<number>(G).fill(NaN));
  const endB = Array.from({ length: S }, () => new Array<number>(G).fill(NaN));
  const clock = new Array<number>(S).fill(0);
  const next = new Array<number>(S).fill(0);
  let progressed = true;
  while (progressed) {
    progressed = false;
    for (let s = 0; s < S; s++) {
      for (; next[s]! < orders[s]!.length; next[s]!++) {
        const [kind, m] = orders[s]![next[s]!]!;
        let ready: number;
        const tr = (b: number): number => t.transfer?.[b] ?? 0;
        if (kind === 'F') ready = s === 0 ? 0 : endF[s - 1]![m]! + tr(s - 1);
        else if (kind === 'W') ready = endB[s]![m]!;
        else ready = s === S - 1 ? endF[s]![m]! : Math.max(endF[s]![m]!, endB[s + 1]![m]! + tr(s));
        if (Number.isNaN(ready)) break; // waits for a neighbour
        const start = Math.max(clock[s]!, ready);
        const dur = kind === 'F' ? t.forward[s]! : kind === 'B' ? t.backward[s]! : kind === 'W' ? t.weight[s]! : t.backward[s]! + t.weight[s]!;
        const end = start + dur;
        if (kind === 'F') endF[s]![m] = end;
        else if (kind !== 'W') endB[s]![m] = end;
        clock[s] = end;
        progressed = true;
      }
    }
  }
  if (next.some((n, s) => n < orders[s]!.length)) throw new Error('pipeline simulation deadlocked');
  return Math.max(...clock);
}

/** Megatron's non-interleaved 1F1B with whole backwards. */
export function simulate1F1B(forward: readonly number[], backward: readonly number[], G: number): number {
  const S = forward.length;
  const orders = Array.from({ length: S }, (_, s) => order1F1B(S, s, G));
  return simulate(orders, { forward, backward, weight: forward.map(() => 0) }, G);
}

