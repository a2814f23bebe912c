/**
 * Expression trees over named symbols: the single source of truth for every quantity of the cost model.
 *
 * Quantities (bytes, FLOPs, seconds) are built with the smart constructors below, which fold constants as they go
 * (`add(2, 3)` is the constant 5, `mul(x, 0)` is 0, `mul(x, 1)` is x, selects with a constant condition pick their
 * branch, calls with constant arguments are evaluated when the function table is known — see `fold`).
 * Evaluation happens either by the interpreter (`interpret`, evaluate.ts) or by code generated once per model
 * (`compileColumns` / `compileTwoLevel`, compile.ts); both read the same tree, so there is no second numeric copy.
 *
 * Nodes are plain immutable objects. Sharing (a DAG) is encouraged: compile.ts eliminates common subexpressions
 * by structural key, so building `x` once and using it many times costs nothing.
 */

export type Expr =
  | { readonly k: 'const'; readonly v: number }
  | { readonly k: 'sym'; readonly name: string }
  | { readonly k: 'add'; readonly xs: readonly Expr[] }
  | { readonly k: 'mul'; readonly xs: readonly Expr[] }
  | { readonly k: 'div'; readonly a: Expr; readonly b: Expr }
  | { readonly k: 'max'; readonly xs: readonly Expr[] }
  | { readonly k: 'min'; readonly xs: readonly Expr[] }
  | { readonly k: 'floor'; readonly a: Expr }
  /** 1 when a > b, else 0. */
  | { readonly k: 'gt'; readonly a: Expr; readonly b: Expr }
  /** 1 when a == b, else 0. */
  | { readonly k: 'eq'; readonly a: Expr; readonly b: Expr }
  /** cond > 0 ? a : b */
  | { readonly k: 'select'; readonly cond: Expr; readonly a: Expr; readonly b: Expr }
  /** A named function from the function table supplied at evaluation/compile time (hardware curves, overlap race). */
  | { readonly k: 'call'; readonly fn: string; readonly args: readonly Expr[] };

export type Num = Expr | number;

/** Function table for `call` nodes: pure numeric functions of their arguments. */
export type FnTable = Readonly<Record<string, (...args: number[]) => number>>;

const CONST_CACHE = new Map<number, Expr>();

export function num(v: number): Expr {
  if (Object.is(v, -0)) v = 0;
  let e = CONST_CACHE.get(v);
  if (!e) {
    e = { k: 'const', v };
    if (CONST_CACHE.size < 4096) CONST_CACHE.set(v, e);
  }
  return e;
}

export function sym(name: string): Expr {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`symbol name ${JSON.stringify(name)} is not an identifier`);
  return { k: 'sym', name };
}

export function lift(x: Num): Expr {
  return typeof x === 'number' ? num(x) : x;
}

export function isConst(e: Expr): e is { k: 'const'; v: number } {
  return e.k === 'const';
}

export function constValue(e: Expr): number | undefined {
  return e.k === 'const' ? e.v : undefined;
}

export const ZERO = num(0);
export const ONE = num(1);

export function add(...xs: Num[]): Expr {
  let c = 0;
  const terms: Expr[] = [];
  for (const x0 of xs) {
    const x = lift(x0);
    if (x.k === 'const') c += x.v;
    else if (x.k === 'add') {
      for (const y of x.xs) {
        if (y.k === 'const') c += y.v;
        else terms.push(y);
      }
    } else terms.push(x);
  }
  if (terms.length === 0) return num(c);
  if (c !== 0) terms.push(num(c));
  return terms.length === 1 ? terms[0]! : { k: 'add', xs: terms };
}

export function mul(...xs: Num[]): Expr {
  let c = 1;
  const factors: Expr[] = [];
  for (const x0 of xs) {
    const x = lift(x0);
    if (x.k === 'const') c *= x.v;
    else if (x.k === 'mul') {
      for (const y of x.xs) {
        if (y.k === 'const') c *= y.v;
        else factors.push(y);
      }
    } else factors.push(x);
  }
  // x·0 = 0: quantities in this model are finite, so the IEEE corner cases (∞·0) never arise.
  if (c === 0 || factors.length === 0) return num(c);
  if (c !== 1) factors.unshift(num(c));
  return factors.length === 1 ? factors[0]! : { k: 'mul', xs: factors };
}

export function neg(x: Num): Expr {
  return mul(-1, x);
}

export function sub(a: Num, b: Num): Expr {
  return add(a, neg(b));
}

export function div(a0: Num, b0: Num): Expr {
  const a = lift(a0);
  const b = lift(b0);
  if (b.k === 'const') {
    if (b.v === 1) return a;
    if (a.k === 'const') return num(a.v / b.v);
  }
  if (a.k === 'const' && a.v === 0) return ZERO;
  return { k: 'div', a, b };
}

function extremum(kind: 'max' | 'min', xs0: Num[]): Expr {
  const pick = kind === 'max' ? Math.max : Math.min;
  let c: number | undefined;
  const rest: Expr[] = [];
  for (const x0 of xs0) {
    const x = lift(x0);
    if (x.k === 'const') c = c === undefined ? x.v : pick(c, x.v);
    else if (x.k === kind) {
      for (const y of x.xs) {
        if (y.k === 'const') c = c === undefined ? y.v : pick(c, y.v);
        else rest.push(y);
      }
    } else rest.push(x);
  }
  if (rest.length === 0) {
    if (c === undefined) throw new Error(`${kind}() needs at least one argument`);
    return num(c);
  }
  if (c !== undefined) rest.push(num(c));
  return rest.length === 1 ? rest[0]! : { k: kind, xs: rest };
}

export function max(...xs: Num[]): Expr {
  return extremum('max', xs);
}

export function min(...xs: Num[]): Expr {
  return extremum('min', xs);
}

/** clamp(x, lo, hi) = min(max(x, lo), hi). */
export function clamp(x: Num, lo: Num, hi: Num): Expr {
  return min(max(x, lo), hi);
}

export function floor(a0: Num): Expr {
  const a = lift(a0);
  if (a.k === 'const') return num(Math.floor(a.v));
  return { k: 'floor', a };
}

/** 1 when a > b else 0. */
export function gt(a0: Num, b0: Num): Expr {
  const a = lift(a0);
  const b = lift(b0);
  if (a.k === 'const' && b.k === 'const') return num(a.v > b.v ? 1 : 0);
  return { k: 'gt', a, b };
}

/** 1 when a >= b else 0. */
export function ge(a: Num, b: Num): Expr {
  return sub(1, gt(b, a));
}

/** 1 when a == b else 0. */
export function eq(a0: Num, b0: Num): Expr {
  const a = lift(a0);
  const b = lift(b0);
  if (a.k === 'const' && b.k === 'const') return num(a.v === b.v ? 1 : 0);
  return { k: 'eq', a, b };
}

/** 1 − x for a 0/1 flag. */
export function not(x: Num): Expr {
  return sub(1, x);
}

/** cond > 0 ? a : b */
export function select(cond0: Num, a0: Num, b0: Num): Expr {
  const cond = lift(cond0);
  const a = lift(a0);
  const b = lift(b0);
  if (cond.k === 'const') return cond.v > 0 ? a : b;
  if (a === b || (a.k === 'const' && b.k === 'const' && a.v === b.v)) return a;
  return { k: 'select', cond, a, b };
}

export function call(fn: string, ...args: Num[]): Expr {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(fn)) throw new Error(`function name ${JSON.stringify(fn)} is not an identifier`);
  return { k: 'call', fn, args: args.map(lift) };
}

/** Sum of a list (empty → 0). */
export function sum(xs: readonly Num[]): Expr {
  return add(...xs);
}

/** Every symbol the expression reads. */
export function symbolsOf(...roots: Expr[]): Set<string> {
  const out = new Set<string>();
  const seen = new Set<Expr>();
  const walk = (e: Expr): void => {
    if (seen.has(e)) return;
    seen.add(e);
    for (const c of children(e)) walk(c);
    if (e.k === 'sym') out.add(e.name);
  };
  for (const r of roots) walk(r);
  return out;
}

export function children(e: Expr): readonly Expr[] {
  switch (e.k) {
    case 'const':
    case 'sym':
      return [];
    case 'add':
    case 'mul':
    case 'max':
    case 'min':
      return e.xs;
    case 'div':
    case 'gt':
    case 'eq':
      return [e.a, e.b];
    case 'floor':
      return [e.a];
    case 'select':
      return [e.cond, e.a, e.b];
    case 'call':
      return e.args;
  }
}

/**
 * Substitute symbols (by name) with expressions or numbers and re-fold. With a function table, calls whose arguments
 * all become constants are evaluated too. Used to specialise a model (e.g. a stage position, a fixed G) before
 * compiling, and by tests.
 */
export function substitute(e: Expr, bindings: Readonly<Record<string, Num>>, fns?: FnTable): Expr {
  const memo = new Map<Expr, Expr>();
  const go = (x: Expr): Expr => {
    const hit = memo.get(x);
    if (hit) return hit;
    let r: Expr;
    switch (x.k) {
      case 'const':
        r = x;
        break;
      case 'sym': {
        const v = bindings[x.name];
        r = v === undefined ? x : lift(v);
        break;
      }
      case 'add':
        r = add(...x.xs.map(go));
        break;
      case 'mul':
        r = mul(...x.xs.map(go));
        break;
      case 'max':
        r = max(...x.xs.map(go));
        break;
      case 'min':
        r = min(...x.xs.map(go));
        break;
      case 'div':
        r = div(go(x.a), go(x.b));
        break;
      case 'gt':
        r = gt(go(x.a), go(x.b));
        break;
      case 'eq':
        r = eq(go(x.a), go(x.b));
        break;
      case 'floor':
        r = floor(go(x.a));
        break;
      case 'select':
        r = select(go(x.cond), go(x.a), go(x.b));
        break;
      case 'call': {
        const args = x.args.map(go);
        const f = fns?.[x.fn];
        r = f && args.every(isConst) ? num(f(...args.map((a) => (a as { v: number }).v))) : call(x.fn, ...args);
        break;
      }
    }
    memo.set(x, r);
    return r;
  };
  return go(e);
}

/** Fold calls with constant arguments using the function table (constructors already fold everything else). */
export function fold(e: Expr, fns: FnTable): Expr {
  return substitute(e, {}, fns);
}

/** Number of distinct nodes (for tests and diagnostics). */
export function size(...roots: Expr[]): number {
  const seen = new Set<Expr>();
  const walk = (e: Expr): void => {
    if (seen.has(e)) return;
    seen.add(e);
    for (const c of children(e)) walk(c);
  };
  for (const r of roots) walk(r);
  return seen.size;
}

/** Human-readable form (for docs, errors and tests). */
export function show(e: Expr): string {
  switch (e.k) {
    case 'const':
      return String(e.v);
    case 'sym':
      return e.name;
    case 'add':
      return `(${e.xs.map(show).join(' + ')})`;
    case 'mul':
      return e.xs.map(show).join('·');
    case 'div':
      return `${show(e.a)}/${show(e.b)}`;
    case 'max':
    case 'min':
      return `${e.k}(${e.xs.map(show).join(', ')})`;
    case 'floor':
      return `floor(${show(e.a)})`;
    case 'gt':
      return `[${show(e.a)} > ${show(e.b)}]`;
    case 'eq':
      return `[${show(e.a)} = ${show(e.b)}]`;
    case 'select':
      return `(${show(e.cond)} ? ${show(e.a)} : ${show(e.b)})`;
    case 'call':
      return `${e.fn}(${e.args.map(show).join(', ')})`;
  }
}
