/**
 * The worker-thread entry of GlpkSolver (glpk-solver.ts): receives `{ id, model }` messages (a glpk.js model
 * built by tuner/milp.ts `buildMilp`), solves each synchronously with glpk.js, and answers `{ id, result }` or
 * `{ id, error }`. When the MIP stops early with an integer solution (GLP_FEAS) it also solves the LP relaxation,
 * whose optimum bounds the gap.
 */
import { parentPort } from 'node:worker_threads';
import GLPK from 'glpk.js/node';
import { GLP, relaxMilp, type MilpModel, type MilpResult } from '../tuner/milp.js';

export interface WorkerRequest {
  id: number;
  model: MilpModel;
}
export type WorkerReply = { id: number; result: MilpResult } | { id: number; error: string };

const port = parentPort;
if (!port) throw new Error('milp-worker.js runs only as a worker thread (see glpk-solver.ts)');
const glpkReady = GLPK();

port.on('message', (req: WorkerRequest) => {
  glpkReady
    .then((glpk): WorkerReply => {
      const out = glpk.solve(req.model, req.model.options);
      const result: MilpResult = { status: out.result.status, z: out.result.z, vars: out.result.vars, time: out.time };
      if (result.status === GLP.FEAS) {
        const { tmlim, mipgap } = req.model.options;
        if (out.time < 0.9 * tmlim) result.gapAtMost = mipgap;
        const relaxed = glpk.solve(relaxMilp(req.model), { msglev: GLP.MSG_OFF, tmlim: Math.max(1, tmlim) });
        if (relaxed.result.status === GLP.OPT) result.bound = relaxed.result.z;
      }
      return { id: req.id, result };
    })
    .catch((e: unknown): WorkerReply => ({ id: req.id, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }))
    .then((reply) => port.postMessage(reply));
});
