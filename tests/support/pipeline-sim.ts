/**
 * A discrete-event simulation of Megatron's non-interleaved 1F1B schedule, to check the tuner's closed-form
 * iteration time against. Stage s runs min(S − s − 1, G) warm-up forwards, then alternates one forward and one
 * backward, then drains its backwards. A forward of micro-batch m needs that micro-batch's forward on the stage
 * before; a backward needs its own forward and the backward of the stage after. Transfers take no time.
 */
export function simulate1F1B(forward: readonly number[], backward: readonly number[], G: number): number {
  const S = forward.length;
  const order = (s: number): Array<['F' | 'B', number]> => {
    const warm = Math.min(S - s - 1, G);
    const ops: Array<['F' | 'B', number]> = [];
    let f = 0;
    for (; f < warm; f++) ops.push(['F', f]);
    for (let b = 0; b < G; b++) {
      if (f < G) ops.push(['F', f++]);
      ops.push(['B', b]);
    }
    return ops;
  };
  const seqs = Array.from({ length: S }, (_, s) => order(s));
  const endF = Array.from({ length: S }, () => new Array<number>(G).fill(NaN));
  const endB = Array.from({ length: S }, () => new Array<number>(G).fill(NaN));
  const clock = new Array<number>(S).fill(0);
  const next = new Array<number>(S).fill(0);
  let progressed = true;
  while (progressed) {
    progressed = false;
    for (let s = 0; s < S; s++) {
      for (; next[s]! < seqs[s]!.length; next[s]!++) {
        const [kind, m] = seqs[s]![next[s]!]!;
        let ready: number;
        if (kind === 'F') {
          ready = s === 0 ? 0 : endF[s - 1]![m]!;
        } else {
          ready = s === S - 1 ? endF[s]![m]! : Math.max(endF[s]![m]!, endB[s + 1]![m]!);
        }
        if (Number.isNaN(ready)) break; // waits for a neighbour
        const start = Math.max(clock[s]!, ready);
        const end = start + (kind === 'F' ? forward[s]! : backward[s]!);
        (kind === 'F' ? endF : endB)[s]![m] = end;
        clock[s] = end;
        progressed = true;
      }
    }
  }
  if (next.some((n, s) => n < seqs[s]!.length)) throw new Error('1F1B simulation deadlocked');
  return Math.max(...clock);
}
