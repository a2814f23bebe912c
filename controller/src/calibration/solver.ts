/**
 * A small bounded Levenberg–Marquardt least-squares solver (pure, deterministic: no clock, no randomness; the
 * same inputs give bit-identical outputs). Sized for calibration: a handful of parameters, tens of residuals,
 * residual functions that cost a few milliseconds. Jacobians are forward differences (backward at an upper
 * bound); steps are projected onto the box [lower, upper].
 */

export interface LmOptions {
  /** Iteration cap (Jacobian evaluations). Default 100. */
  maxIterations?: number;
  /** Finite-difference step in parameter units. Default 1e-6. */
  diffStep?: number;
  /** Stop when the relative cost decrease of an accepted step falls below this. Default 1e-12. */
  tolerance?: number;
}

export interface LmResult {
  x: Float64Array;
  /** ½‖r(x)‖². */
  cost: number;
  iterations: number;
  /** The Jacobian at the solution (rows = residuals), for identifiability diagnostics. */
  jacobian: Float64Array[];
}

/** ½‖r‖² */
export function halfSquaredNorm(r: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i]! * r[i]!;
  return s / 2;
}

/**
 * Solves A x = b for a small dense symmetric positive (semi)definite A by Gaussian elimination with partial
 * pivoting. A is an array of rows; neither A nor b is modified. Singular pivots (|p| < 1e-300) yield 0 for
 * that component.
 */
export function solveLinear(A: ArrayLike<number>[], b: ArrayLike<number>): Float64Array {
  const n = b.length;
  const M = A.map((row) => Float64Array.from(row));
  const y = Float64Array.from(b);
  for (let k = 0; k < n; k++) {
    let piv = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(M[i]![k]!) > Math.abs(M[piv]![k]!)) piv = i;
    if (piv !== k) {
      [M[k], M[piv]] = [M[piv]!, M[k]!];
      [y[k], y[piv]] = [y[piv]!, y[k]!];
    }
    const p = M[k]![k]!;
    if (Math.abs(p) < 1e-300) continue;
    for (let i = k + 1; i < n; i++) {
      const f = M[i]![k]! / p;
      if (f === 0) continue;
      for (let j = k; j < n; j++) M[i]![j]! -= f * M[k]![j]!;
      y[i]! -= f * y[k]!;
    }
  }
  const x = new Float64Array(n);
  for (let k = n - 1; k >= 0; k--) {
    const p = M[k]![k]!;
    if (Math.abs(p) < 1e-300) {
      x[k] = 0;
      continue;
    }
    let s = y[k]!;
    for (let j = k + 1; j < n; j++) s -= M[k]![j]! * x[j]!;
    x[k] = s / p;
  }
  return x;
}

function clampInto(x: Float64Array, lower: ArrayLike<number>, upper: ArrayLike<number>): Float64Array {
  for (let i = 0; i < x.length; i++) x[i] = Math.min(upper[i]!, Math.max(lower[i]!, x[i]!));
  return x;
}

/** Forward-difference Jacobian (rows = residuals, columns = parameters). */
export function jacobian(
  f: (x: Float64Array) => Float64Array,
  x: Float64Array,
  r0: Float64Array,
  lower: ArrayLike<number>,
  upper: ArrayLike<number>,
  h = 1e-6,
): Float64Array[] {
  const m = r0.length;
  const n = x.length;
  const J = Array.from({ length: m }, () => new Float64Array(n));
  for (let j = 0; j < n; j++) {
    const xj = Float64Array.from(x);
    const step = x[j]! + h <= upper[j]! ? h : -h;
    xj[j] = x[j]! + step;
    if (xj[j]! < lower[j]!) continue; // a degenerate box (lower = upper): the column stays 0
    const r = f(xj);
    for (let i = 0; i < m; i++) J[i]![j] = (r[i]! - r0[i]!) / step;
  }
  return J;
}

/**
 * Minimises ½‖f(x)‖² over lower ≤ x ≤ upper from x0 (clamped into the box). Marquardt's scaled damping
 * (JᵀJ + μ·diag(JᵀJ) + μ·1e-9·I) with μ ÷ 3 on an accepted step and × 4 on a rejected one.
 */
export function levenbergMarquardt(
  f: (x: Float64Array) => Float64Array,
  x0: ArrayLike<number>,
  lower: ArrayLike<number>,
  upper: ArrayLike<number>,
  opts: LmOptions = {},
): LmResult {
  const maxIt = opts.maxIterations ?? 100;
  const h = opts.diffStep ?? 1e-6;
  const tol = opts.tolerance ?? 1e-12;
  const n = x0.length;
  let x = clampInto(Float64Array.from(x0), lower, upper);
  let r = f(x);
  let cost = halfSquaredNorm(r);
  let mu = 1e-3;
  let J = jacobian(f, x, r, lower, upper, h);
  let it = 0;
  for (; it < maxIt; it++) {
    // normal equations
    const A = Array.from({ length: n }, () => new Float64Array(n));
    const g = new Float64Array(n);
    for (const [i, row] of J.entries()) {
      for (let a = 0; a < n; a++) {
        const ja = row[a]!;
        if (ja === 0) continue;
        g[a]! += ja * r[i]!;
        for (let b = 0; b < n; b++) A[a]![b]! += ja * row[b]!;
      }
    }
    let gmax = 0;
    for (let a = 0; a < n; a++) gmax = Math.max(gmax, Math.abs(g[a]!));
    if (gmax < 1e-15) break;
    let accepted = false;
    for (let tries = 0; tries < 30 && !accepted; tries++) {
      const D = A.map((row, a) => {
        const c = Float64Array.from(row);
        c[a]! += mu * row[a]! + mu * 1e-9;
        return c;
      });
      const step = solveLinear(D, g.map((v) => -v));
      const xn = clampInto(x.map((v, a) => v + step[a]!), lower, upper);
      let moved = false;
      for (let a = 0; a < n; a++) if (xn[a] !== x[a]) moved = true;
      if (!moved) {
        mu *= 4;
        continue;
      }
      const rn = f(xn);
      const cn = halfSquaredNorm(rn);
      if (Number.isFinite(cn) && cn < cost) {
        const gain = (cost - cn) / Math.max(cost, 1e-300);
        x = xn;
        r = rn;
        cost = cn;
        mu = Math.max(mu / 3, 1e-12);
        accepted = true;
        J = jacobian(f, x, r, lower, upper, h);
        if (gain < tol) return { x, cost, iterations: it + 1, jacobian: J };
      } else {
        mu *= 4;
      }
    }
    if (!accepted) break;
  }
  return { x, cost, iterations: it, jacobian: J };
}
