import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  add,
  call,
  clamp,
  div,
  eq,
  floor,
  gt,
  max,
  min,
  mul,
  num,
  select,
  show,
  size,
  sub,
  substitute,
  sym,
  symbolsOf,
  type Expr,
} from '../../../controller/src/tuner/symbolic/expr.js';
import { compileColumns, compileTwoLevel, evalScalar, interpret } from '../../../controller/src/tuner/symbolic/compile.js';

const x = sym('x');
const y = sym('y');

describe('tuner/symbolic: constant folding', () => {
  const table: Array<{ name: string; e: Expr; want: string }> = [
    { name: 'constants add', e: add(2, 3), want: '5' },
    { name: 'x + 0 is x', e: add(x, 0), want: 'x' },
    { name: 'x · 1 is x', e: mul(x, 1), want: 'x' },
    { name: 'x · 0 is 0', e: mul(x, 0, y), want: '0' },
    { name: 'constant factors merge', e: mul(2, x, 3), want: '6·x' },
    { name: 'nested sums flatten and fold', e: add(1, add(x, 2), add(3, y)), want: '(x + y + 6)' },
    { name: 'x / 1 is x', e: div(x, 1), want: 'x' },
    { name: '0 / x is 0', e: div(0, x), want: '0' },
    { name: 'constant division', e: div(6, 4), want: '1.5' },
    { name: 'max of constants', e: max(1, 7, 3), want: '7' },
    { name: 'max keeps the best constant', e: max(x, 2, 5), want: 'max(x, 5)' },
    { name: 'min of constants', e: min(4, -1), want: '-1' },
    { name: 'gt of constants', e: gt(3, 2), want: '1' },
    { name: 'eq of constants', e: eq(3, 2), want: '0' },
    { name: 'select on a constant condition', e: select(gt(1, 0), x, y), want: 'x' },
    { name: 'select with equal branches', e: select(x, y, y), want: 'y' },
    { name: 'floor of a constant', e: floor(2.7), want: '2' },
    { name: 'x − x stays symbolic (no algebra beyond constants)', e: sub(x, x), want: '(x + -1·x)' },
    { name: 'substitution folds', e: substitute(add(mul(x, y), 1), { x: 2, y: 3 }), want: '7' },
    { name: 'calls fold when the table is known', e: substitute(call('sq', x), { x: 3 }, { sq: (v) => v * v }), want: '9' },
  ];
  for (const c of table) it(c.name, () => assert.equal(show(c.e), c.want));

  it('symbol and function names must be identifiers (nothing else reaches generated code)', () => {
    assert.throws(() => sym('a;b'));
    assert.throws(() => call('f()', 1));
  });

  it('structurally equal subtrees are computed once (CSE) in compiled code', () => {
    const heavy = (): Expr => mul(add(x, 1), add(y, 2), add(x, y));
    const e = add(heavy(), heavy(), heavy());
    const fn = compileColumns({ e }, { columns: ['x', 'y'], scalars: [] });
    // one line per distinct non-leaf node: x+1, y+2, x+y, the product, the sum
    assert.equal((fn.source.match(/const t\d+ =/g) ?? []).length, 5);
    assert.ok(size(e) > 5);
  });
});

// Random expression trees over two column symbols (u, v) and one scalar (k).
const leaf = fc.oneof(
  fc.constantFrom<Expr>(sym('u'), sym('v'), sym('k')),
  fc.double({ min: -8, max: 8, noNaN: true }).map((d) => num(d)),
  fc.integer({ min: -3, max: 3 }).map((i) => num(i)),
);
const { tree } = fc.letrec<{ tree: Expr }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.tuple(tie('tree'), tie('tree')).map(([a, b]) => add(a, b)),
    fc.tuple(tie('tree'), tie('tree')).map(([a, b]) => mul(a, b)),
    fc.tuple(tie('tree'), tie('tree')).map(([a, b]) => div(a, add(1.5, max(b, mul(-1, b))))), // denominator ≥ 1.5
    fc.tuple(tie('tree'), tie('tree')).map(([a, b]) => max(a, b)),
    fc.tuple(tie('tree'), tie('tree')).map(([a, b]) => min(a, b)),
    fc.tuple(tie('tree'), tie('tree'), tie('tree')).map(([a, b, c]) => select(gt(a, b), c, a)),
    fc.tuple(tie('tree'), tie('tree')).map(([a, b]) => clamp(a, -2, add(2, max(b, 0)))),
    fc.tuple(tie('tree'), tie('tree')).map(([a, b]) => eq(floor(a), floor(b))),
    tie('tree').map((a) => call('soft', a)),
  ),
}));
const fns = { soft: (a: number) => Math.log1p(Math.abs(a)) };
const finite = fc.double({ min: -100, max: 100, noNaN: true });

function same(a: number, b: number): boolean {
  return Object.is(a, b) || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

describe('tuner/symbolic: compiled and interpreted evaluation agree (properties)', () => {
  it('compileColumns = interpret on every row', () => {
    fc.assert(
      fc.property(tree, tree, fc.array(fc.tuple(finite, finite), { minLength: 1, maxLength: 8 }), finite, (e1, e2, rows, k) => {
        const spec = { columns: ['u', 'v'], scalars: ['k'] };
        const fn = compileColumns({ e1, e2 }, spec, fns);
        const n = rows.length;
        const u = Float64Array.from(rows.map((r) => r[0]));
        const v = Float64Array.from(rows.map((r) => r[1]));
        const out = { e1: new Float64Array(n), e2: new Float64Array(n) };
        fn({ u, v }, { k }, n, out);
        for (let i = 0; i < n; i++) {
          const env = { u: u[i]!, v: v[i]!, k };
          if (!same(out.e1[i]!, interpret(e1, env, fns))) return false;
          if (!same(out.e2[i]!, interpret(e2, env, fns))) return false;
        }
        const scalar = evalScalar(fn, ['e1'], { u: u[0]!, v: v[0]!, k }, spec);
        return same(scalar.e1!, out.e1[0]!);
      }),
      { numRuns: 300 },
    );
  });

  it('compileTwoLevel (rows × cells) = interpret, whatever the split of symbols', () => {
    fc.assert(
      fc.property(tree, fc.array(fc.tuple(finite, finite), { minLength: 1, maxLength: 6 }), finite, (e, rows, k) => {
        // u: row column, v: row scalar? no — u row column, k cell scalar, v row scalar (constant per batch)
        const f = compileTwoLevel({ e }, { rowColumns: ['u'], rowScalars: ['v'], cellScalars: ['k'] }, fns);
        const n = rows.length;
        const u = Float64Array.from(rows.map((r) => r[0]));
        const vv = rows[0]![1];
        const prepared = f.prepare({ u }, { v: vv }, n);
        const out = new Float64Array(n);
        f.evalCell(prepared, { k }, [out]);
        for (let i = 0; i < n; i++) if (!same(out[i]!, interpret(e, { u: u[i]!, v: vv, k }, fns))) return false;
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it('the two-level split hoists row work out of the cell loop', () => {
    const heavy = call('soft', mul(sym('u'), sym('u'), 3));
    const e = add(mul(sym('k'), heavy), sym('k'));
    const f = compileTwoLevel({ e }, { rowColumns: ['u'], rowScalars: [], cellScalars: ['k'] }, fns);
    assert.equal(f.intermediates, 1);
    assert.ok(!f.source.cell.includes('F_soft'), 'the call runs in prepare, not per cell');
  });

  it('unknown symbols and functions are errors, not silent NaN', () => {
    assert.throws(() => compileColumns({ e: add(x, 1) }, { columns: [], scalars: [] }), /symbol x/);
    assert.throws(() => compileColumns({ e: call('nope', x) }, { columns: ['x'], scalars: [] }, {}), /nope/);
    assert.throws(() => interpret(add(x, 1), {}), /symbol x/);
    assert.deepEqual([...symbolsOf(add(x, mul(y, x)))].sort(), ['x', 'y']);
  });
});
