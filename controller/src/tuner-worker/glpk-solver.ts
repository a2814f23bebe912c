/**
 * GlpkSolver: Mist's inter-stage MILP (tuner/milp.ts) solved by glpk.js in a worker thread, so that the
 * synchronous solve never blocks the controller's event loop. One long-lived worker per instance, started on the
 * first solve and stopped by `close()`; requests are answered in order. The worker does not keep the process
 * alive while idle (it is unref'd between requests). A solve that outlives its time limit by far (glpk.js
 * checks `tmlim` only between steps) is abandoned: the worker is terminated and the solve rejects.
 */
import { Worker } from 'node:worker_threads';
import type { InterStageProblem, InterStageSolution, Solver, SolveOptions } from '../tuner/solver.js';
import { checkProblem, hasFeasibleSplit, noSolution } from '../tuner/dp-solver.js';
import { buildMilp, decodeMilp, type BuildOptions, type MilpModel, type MilpResult } from '../tuner/milp.js';
import type { WorkerReply, WorkerRequest } from './milp-worker.js';

const WORKER_URL = new URL('./milp-worker.js', import.meta.url);

interface Pending {
  resolve(r: MilpResult): void;
  reject(e: Error): void;
  guard: NodeJS.Timeout;
}

export interface GlpkSolverOptions extends BuildOptions {
  /** Extra wall-clock seconds allowed past `timeLimitSeconds` before the worker is abandoned (default max(10, limit)). */
  graceSeconds?: number;
}

export class GlpkSolver implements Solver {
  readonly name = 'glpk';
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: GlpkSolverOptions = {}) {}

  async solve(p: InterStageProblem, o: SolveOptions): Promise<InterStageSolution> {
    checkProblem(p);
    if (!hasFeasibleSplit(p)) return noSolution('infeasible', 'glpk');
    const model = buildMilp(p, o, this.opts);
    const result = await this.request(model, o.timeLimitSeconds);
    return decodeMilp(p, result);
  }

  /** Stops the worker; pending solves reject. The instance can't be used afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = null;
    this.failAll(new Error('GlpkSolver closed'));
    if (w) await w.terminate();
  }

  private request(model: MilpModel, limitSeconds: number): Promise<MilpResult> {
    if (this.closed) return Promise.reject(new Error('GlpkSolver closed'));
    const w = this.spawn();
    const id = this.nextId++;
    const grace = this.opts.graceSeconds ?? Math.max(10, limitSeconds);
    return new Promise<MilpResult>((resolve, reject) => {
      const guard = setTimeout(() => {
        this.abandon(new Error(`glpk worker gave no answer within ${limitSeconds + grace} s (time limit ${limitSeconds} s)`));
      }, (limitSeconds + grace) * 1000);
      guard.unref();
      this.pending.set(id, { resolve, reject, guard });
      w.ref();
      const req: WorkerRequest = { id, model };
      w.postMessage(req);
    });
  }

  private spawn(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_URL);
    w.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      clearTimeout(p.guard);
      if (this.pending.size === 0) w.unref();
      if ('error' in reply) p.reject(new Error(`glpk worker: ${reply.error}`));
      else p.resolve(reply.result);
    });
    w.on('error', (e) => {
      if (this.worker === w) this.worker = null;
      this.failAll(e instanceof Error ? e : new Error(String(e)));
    });
    w.on('exit', (code) => {
      if (this.worker !== w) return;
      this.worker = null;
      this.failAll(new Error(`glpk worker exited (code ${code})`));
    });
    w.unref();
    this.worker = w;
    return w;
  }

  private abandon(e: Error): void {
    const w = this.worker;
    this.worker = null;
    this.failAll(e);
    if (w) void w.terminate();
  }

  private failAll(e: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.guard);
      this.pending.delete(id);
      p.reject(e);
    }
  }
}
