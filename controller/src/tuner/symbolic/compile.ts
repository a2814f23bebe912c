/**
 * Evaluation of expression trees (expr.ts): an interpreter, and a compiler to column functions.
 *
 * Compilation generates JavaScript source once per set of output expressions and turns it into a function with
 * `new Function` (the only dynamic code in the tuner; the source is built solely from our own node kinds, numeric
 * literals and identifier-checked symbol/function names, never from user strings). The generated function walks a
 * column of N candidates held in Float64Arrays, with common subexpressions computed once and every subexpression
 * that reads no column hoisted out of the loop.
 *
 * `compileTwoLevel` adds a second level of loop-invariant code motion for the search: symbols are split into
 * per-row columns (a candidate's b, dp, tp, ZeRO flags, offload ratios …), row scalars (fixed for a batch of rows:
 * G, nodes …) and cell scalars (l, c, p). Every maximal subexpression that reads rows but no cell scalar is computed
 * once per row by `prepare` into an intermediate column; `evalCell` then evaluates only the thin remainder for one
 * (l, c, p) cell over all rows. The interpreter evaluates the very same trees, so compiled and interpreted results
 * agree (tests check this as a property).
 */
import { children, type Expr, type FnTable } from './expr.js';

/** Evaluate with a memo (the tree is a DAG). Unknown symbols or functions throw. */
export function interpret(e: Expr, env: Readonly<Record<string, number>>, fns: FnTable = {}): number {
  const memo = new Map<Expr, number>();
  const go = (x: Expr): number => {
    const hit = memo.get(x);
    if (hit !== undefined) return hit;
    let r: number;
    switch (x.k) {
      case 'const':
        return x.v;
      case 'sym': {
        const v = env[x.name];
        if (v === undefined) throw new Error(`symbol ${x.name} has no value`);
        return v;
      }
      case 'add': {
        r = go(x.xs[0]!);
        for (let i = 1; i < x.xs.length; i++) r = r + go(x.xs[i]!);
        break;
      }
      case 'mul': {
        r = go(x.xs[0]!);
        for (let i = 1; i < x.xs.length; i++) r = r * go(x.xs[i]!);
        break;
      }
      case 'div':
        r = go(x.a) / go(x.b);
        break;
      case 'max':
        r = Math.max(...x.xs.map(go));
        break;
      case 'min':
        r = Math.min(...x.xs.map(go));
        break;
      case 'floor':
        r = Math.floor(go(x.a));
        break;
      case 'gt':
        r = go(x.a) > go(x.b) ? 1 : 0;
        break;
      case 'eq':
        r = go(x.a) === go(x.b) ? 1 : 0;
        break;
      case 'select':
        r = go(x.cond) > 0 ? go(x.a) : go(x.b);
        break;
      case 'call': {
        const f = fns[x.fn];
        if (!f) throw new Error(`function ${x.fn} is not in the function table`);
        r = f(...x.args.map(go));
        break;
      }
    }
    memo.set(x, r);
    return r;
  };
  return go(e);
}

/** Evaluate several named outputs on one environment (shares the memo across outputs). */
export function interpretAll(outputs: Readonly<Record<string, Expr>>, env: Readonly<Record<string, number>>, fns: FnTable = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, e] of Object.entries(outputs)) out[k] = interpret(e, env, fns);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Code generation

/** Structural interning: equal subtrees get the same id, so they are computed once. */
class Interner {
  private readonly byKey = new Map<string, number>();
  private readonly idOf = new Map<Expr, number>();
  readonly nodes: Expr[] = [];

  id(e: Expr): number {
    const known = this.idOf.get(e);
    if (known !== undefined) return known;
    const kids = children(e).map((c) => this.id(c));
    let key: string;
    switch (e.k) {
      case 'const':
        key = `c${e.v}`;
        break;
      case 'sym':
        key = `s${e.name}`;
        break;
      case 'call':
        key = `f${e.fn}(${kids.join(',')})`;
        break;
      default:
        key = `${e.k}(${kids.join(',')})`;
    }
    let id = this.byKey.get(key);
    if (id === undefined) {
      id = this.nodes.length;
      this.nodes.push(e);
      this.byKey.set(key, id);
    }
    this.idOf.set(e, id);
    return id;
  }
}

function literal(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '(-Infinity)';
  return v < 0 ? `(${v})` : String(v);
}

/** Emit `const t<id> = …;` lines for the given node ids (already in dependency order). */
function emitNode(e: Expr, ref: (c: Expr) => string): string {
  switch (e.k) {
    case 'const':
      return literal(e.v);
    case 'sym':
      throw new Error('symbols are never emitted as nodes');
    case 'add':
      return `(${e.xs.map(ref).join(' + ')})`;
    case 'mul':
      return `(${e.xs.map(ref).join(' * ')})`;
    case 'div':
      return `(${ref(e.a)} / ${ref(e.b)})`;
    case 'max':
      return `Math.max(${e.xs.map(ref).join(', ')})`;
    case 'min':
      return `Math.min(${e.xs.map(ref).join(', ')})`;
    case 'floor':
      return `Math.floor(${ref(e.a)})`;
    case 'gt':
      return `(${ref(e.a)} > ${ref(e.b)} ? 1 : 0)`;
    case 'eq':
      return `(${ref(e.a)} === ${ref(e.b)} ? 1 : 0)`;
    case 'select':
      return `(${ref(e.cond)} > 0 ? ${ref(e.a)} : ${ref(e.b)})`;
    case 'call':
      return `F_${e.fn}(${e.args.map(ref).join(', ')})`;
  }
}

/** Post-order over ids reachable from roots. */
function topo(interner: Interner, roots: number[], stopAt?: (id: number) => boolean): number[] {
  const order: number[] = [];
  const seen = new Set<number>();
  const visit = (id: number): void => {
    if (seen.has(id)) return;
    seen.add(id);
    if (!stopAt || !stopAt(id)) for (const c of children(interner.nodes[id]!)) visit(interner.id(c));
    order.push(id);
  };
  for (const r of roots) visit(r);
  return order;
}

function fnNames(interner: Interner, fns: FnTable): string[] {
  const names = new Set<string>();
  for (const n of interner.nodes) {
    if (n.k === 'call') {
      if (!fns[n.fn]) throw new Error(`function ${n.fn} is not in the function table`);
      names.add(n.fn);
    }
  }
  return [...names].sort();
}

/** A compiled column function: outputs[k][i] = f_k(columns[·][i], scalars) for i < n. */
export type ColumnFn = (
  columns: Readonly<Record<string, ArrayLike<number>>>,
  scalars: Readonly<Record<string, number>>,
  n: number,
  out: Readonly<Record<string, Float64Array>>,
) => void;

export interface ColumnSpec {
  /** Symbols that vary per element (read from Float64Arrays). */
  columns: readonly string[];
  /** Symbols fixed for the whole call. Any symbol not listed in either is an error. */
  scalars: readonly string[];
}

function checkSymbols(interner: Interner, known: Set<string>): void {
  for (const n of interner.nodes) {
    if (n.k === 'sym' && !known.has(n.name)) throw new Error(`symbol ${n.name} is neither a column nor a scalar`);
  }
}

/** Compile named outputs to one column function (single level; see compileTwoLevel for the search's form). */
export type CompiledColumns = ColumnFn & { source: string; outputs: readonly string[] };

export function compileColumns(outputs: Readonly<Record<string, Expr>>, spec: ColumnSpec, fns: FnTable = {}): CompiledColumns {
  const interner = new Interner();
  const names = Object.keys(outputs);
  const roots = names.map((k) => interner.id(outputs[k]!));
  const colSet = new Set(spec.columns);
  checkSymbols(interner, new Set([...spec.columns, ...spec.scalars]));
  const calls = fnNames(interner, fns);

  const order = topo(interner, roots);
  const varies = new Map<number, boolean>();
  for (const id of order) {
    const e = interner.nodes[id]!;
    varies.set(id, e.k === 'sym' ? colSet.has(e.name) : children(e).some((c) => varies.get(interner.id(c))));
  }
  const ref = (c: Expr): string => {
    const id = interner.id(c);
    const e = interner.nodes[id]!;
    if (e.k === 'const') return literal(e.v);
    if (e.k === 'sym') return colSet.has(e.name) ? `v_${e.name}` : `s_${e.name}`;
    return `t${id}`;
  };
  const pre: string[] = [];
  const loop: string[] = [];
  const usedCols = new Set<string>();
  const usedScalars = new Set<string>();
  for (const id of order) {
    const e = interner.nodes[id]!;
    if (e.k === 'sym') {
      (colSet.has(e.name) ? usedCols : usedScalars).add(e.name);
      continue;
    }
    if (e.k === 'const') continue;
    (varies.get(id) ? loop : pre).push(`const t${id} = ${emitNode(e, ref)};`);
  }
  const lines: string[] = [];
  lines.push('"use strict";');
  lines.push(`return function columns(C, S, n, O) {`);
  for (const s of usedScalars) lines.push(`const s_${s} = +S.${s}; if (!(s_${s} === s_${s})) throw new Error("scalar ${s} is missing");`);
  for (const c of usedCols) lines.push(`const c_${c} = C.${c}; if (c_${c} === undefined || c_${c}.length < n) throw new Error("column ${c} is missing or shorter than n");`);
  names.forEach((k, j) => lines.push(`const o${j} = O[${JSON.stringify(k)}]; if (o${j} === undefined || o${j}.length < n) throw new Error("output ${k} is missing or shorter than n");`));
  lines.push(...pre);
  lines.push('for (let i = 0; i < n; i++) {');
  for (const c of usedCols) lines.push(`const v_${c} = c_${c}[i];`);
  lines.push(...loop);
  names.forEach((_, j) => lines.push(`o${j}[i] = ${ref(interner.nodes[roots[j]!]!)};`));
  lines.push('}');
  lines.push('};');
  const source = lines.join('\n');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function(...calls.map((f) => `F_${f}`), source) as (...f: unknown[]) => ColumnFn;
  const fn = factory(...calls.map((f) => fns[f])) as CompiledColumns;
  fn.source = source;
  fn.outputs = names;
  return fn;
}

/** Evaluate one environment through a compiled fn on length-1 columns (no second numeric copy of anything). */
export function evalScalar(fn: CompiledColumns, outputs: readonly string[], env: Readonly<Record<string, number>>, spec: ColumnSpec): Record<string, number> {
  const cols: Record<string, Float64Array> = {};
  for (const c of spec.columns) cols[c] = Float64Array.of(env[c] ?? NaN);
  const out: Record<string, Float64Array> = {};
  for (const o of fn.outputs) out[o] = new Float64Array(1);
  fn(cols, env, 1, out);
  const r: Record<string, number> = {};
  for (const o of outputs) r[o] = out[o]![0]!;
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Two-level compilation (rows × cells)

export interface TwoLevelSpec {
  /** Per-row symbols (Float64Array columns). */
  rowColumns: readonly string[];
  /** Symbols fixed for a prepared batch of rows. */
  rowScalars: readonly string[];
  /** Symbols fixed for one cell (evalCell call). */
  cellScalars: readonly string[];
}

export interface PreparedRows {
  readonly n: number;
  /** Row-phase intermediates, one column each. */
  readonly inter: Float64Array[];
  readonly rowScalars: Readonly<Record<string, number>>;
}

export interface TwoLevelFn {
  readonly outputs: readonly string[];
  /** Number of per-row intermediate columns the cell phase reads. */
  readonly intermediates: number;
  /** Generated sources, for inspection. */
  readonly source: { prepare: string; cell: string };
  prepare(columns: Readonly<Record<string, ArrayLike<number>>>, rowScalars: Readonly<Record<string, number>>, n: number): PreparedRows;
  /** out[k][i] for i < prepared.n, at one cell. */
  evalCell(prepared: PreparedRows, cellScalars: Readonly<Record<string, number>>, out: readonly Float64Array[]): void;
}

/**
 * Re-associate n-ary sums, products and extrema so that their row-only operands form one sub-node (computed once per
 * row by `prepare`) and their operands free of row symbols form another (hoisted out of the cell loop). Only the
 * order of evaluation changes (floating-point rounding may differ from the interpreter in the last bits).
 */
function regroup(roots: Expr[], rowSet: Set<string>, cellSet: Set<string>): Expr[] {
  const deps = new Map<Expr, number>(); // bit 1: reads a row column, bit 2: reads a cell scalar
  const memo = new Map<Expr, Expr>();
  const depOf = (e: Expr): number => {
    let d = deps.get(e);
    if (d !== undefined) return d;
    d = e.k === 'sym' ? (rowSet.has(e.name) ? 1 : 0) | (cellSet.has(e.name) ? 2 : 0) : 0;
    for (const c of children(e)) d |= depOf(c);
    deps.set(e, d);
    return d;
  };
  const go = (e: Expr): Expr => {
    const hit = memo.get(e);
    if (hit) return hit;
    let r: Expr = e;
    switch (e.k) {
      case 'add':
      case 'mul':
      case 'max':
      case 'min': {
        const xs = e.xs.map(go);
        const rowOnly = xs.filter((x) => depOf(x) === 1);
        const noRow = xs.filter((x) => (depOf(x) & 1) === 0);
        const mixed = xs.filter((x) => depOf(x) === 3);
        const group = (g: Expr[]): Expr[] => (g.length >= 2 ? [{ k: e.k, xs: g } as Expr] : g);
        const parts = [...group(rowOnly), ...group(noRow), ...mixed];
        r = parts.length === 1 ? parts[0]! : ({ k: e.k, xs: parts } as Expr);
        break;
      }
      case 'div':
        r = { k: 'div', a: go(e.a), b: go(e.b) };
        break;
      case 'gt':
      case 'eq':
        r = { k: e.k, a: go(e.a), b: go(e.b) };
        break;
      case 'floor':
        r = { k: 'floor', a: go(e.a) };
        break;
      case 'select':
        r = { k: 'select', cond: go(e.cond), a: go(e.a), b: go(e.b) };
        break;
      case 'call':
        r = { k: 'call', fn: e.fn, args: e.args.map(go) };
        break;
      default:
        r = e;
    }
    memo.set(e, r);
    return r;
  };
  return roots.map(go);
}

export function compileTwoLevel(outputs: Readonly<Record<string, Expr>>, spec: TwoLevelSpec, fns: FnTable = {}): TwoLevelFn {
  const interner = new Interner();
  const names = Object.keys(outputs);
  const regrouped = regroup(
    names.map((k) => outputs[k]!),
    new Set(spec.rowColumns),
    new Set(spec.cellScalars),
  );
  const roots = regrouped.map((e) => interner.id(e));
  const rowSet = new Set(spec.rowColumns);
  const rowScalarSet = new Set(spec.rowScalars);
  const cellSet = new Set(spec.cellScalars);
  checkSymbols(interner, new Set([...rowSet, ...rowScalarSet, ...cellSet]));
  const calls = fnNames(interner, fns);

  const order = topo(interner, roots);
  const R = new Map<number, boolean>();
  const C = new Map<number, boolean>();
  for (const id of order) {
    const e = interner.nodes[id]!;
    if (e.k === 'sym') {
      R.set(id, rowSet.has(e.name));
      C.set(id, cellSet.has(e.name));
    } else {
      const kids = children(e).map((c) => interner.id(c));
      R.set(id, kids.some((k) => R.get(k)));
      C.set(id, kids.some((k) => C.get(k)));
    }
  }
  const rowPhase = (id: number): boolean => R.get(id)! && !C.get(id)!;
  // Boundary: row-phase nodes read by a cell-dependent node, or outputs that are row-phase themselves.
  const boundary = new Map<number, number>();
  const mark = (id: number): void => {
    if (!boundary.has(id)) boundary.set(id, boundary.size);
  };
  for (const id of order) {
    const e = interner.nodes[id]!;
    if (e.k === 'sym' || e.k === 'const' || rowPhase(id)) continue;
    if (!R.get(id)) continue;
    for (const c of children(e)) {
      const cid = interner.id(c);
      if (rowPhase(cid) && interner.nodes[cid]!.k !== 'const') mark(cid);
    }
  }
  for (const r of roots) if (rowPhase(r)) mark(r);
  const bIds = [...boundary.keys()];

  // --- prepare: a column function over the row symbols computing the boundary nodes
  const prepOut: Record<string, Expr> = {};
  bIds.forEach((id, j) => (prepOut[`i${j}`] = interner.nodes[id]!));
  const prepFn = compileColumns(prepOut, { columns: spec.rowColumns, scalars: spec.rowScalars }, fns);

  // --- cell function
  const cellOrder = topo(interner, roots, (id) => boundary.has(id));
  const ref = (c: Expr): string => {
    const id = interner.id(c);
    const e = interner.nodes[id]!;
    if (e.k === 'const') return literal(e.v);
    if (boundary.has(id)) return `B${boundary.get(id)}[i]`;
    if (e.k === 'sym') return `s_${e.name}`;
    return `t${id}`;
  };
  const pre: string[] = [];
  const loop: string[] = [];
  const usedScalars = new Set<string>();
  const usedB = new Set<number>();
  for (const id of cellOrder) {
    const e = interner.nodes[id]!;
    if (boundary.has(id)) {
      usedB.add(boundary.get(id)!);
      continue;
    }
    if (e.k === 'const') continue;
    if (e.k === 'sym') {
      if (rowSet.has(e.name)) throw new Error(`internal: row symbol ${e.name} reached the cell phase`);
      usedScalars.add(e.name);
      continue;
    }
    (R.get(id) ? loop : pre).push(`const t${id} = ${emitNode(e, ref)};`);
  }
  const lines: string[] = ['"use strict";', 'return function cell(I, S, n, O) {'];
  for (const s of usedScalars) lines.push(`const s_${s} = +S.${s}; if (!(s_${s} === s_${s})) throw new Error("scalar ${s} is missing");`);
  for (const j of usedB) lines.push(`const B${j} = I[${j}];`);
  names.forEach((k, j) => lines.push(`const o${j} = O[${j}]; if (o${j} === undefined || o${j}.length < n) throw new Error("output ${k} is missing or shorter than n");`));
  lines.push(...pre);
  lines.push('for (let i = 0; i < n; i++) {');
  lines.push(...loop);
  names.forEach((_, j) => lines.push(`o${j}[i] = ${ref(interner.nodes[roots[j]!]!)};`));
  lines.push('}', '};');
  const cellSource = lines.join('\n');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const cellFactory = new Function(...calls.map((f) => `F_${f}`), cellSource) as (...f: unknown[]) => (I: Float64Array[], S: Record<string, number>, n: number, O: readonly Float64Array[]) => void;
  const cellFn = cellFactory(...calls.map((f) => fns[f]));

  return {
    outputs: names,
    intermediates: bIds.length,
    source: { prepare: prepFn.source, cell: cellSource },
    prepare(columns, rowScalars, n) {
      const out: Record<string, Float64Array> = {};
      const inter: Float64Array[] = [];
      for (let j = 0; j < bIds.length; j++) {
        const a = new Float64Array(n);
        out[`i${j}`] = a;
        inter.push(a);
      }
      prepFn(columns, rowScalars, n, out);
      return { n, inter, rowScalars: { ...rowScalars } };
    },
    evalCell(prepared, cellScalars, out) {
      cellFn(prepared.inter, { ...prepared.rowScalars, ...cellScalars }, prepared.n, out);
    },
  };
}
