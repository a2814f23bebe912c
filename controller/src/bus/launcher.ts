/**
 * Launch fan-out: sends one Launch to every node of a plan's placement, in parallel, under one deadline. All or
 * nothing: if any node refuses or does not answer in time, every node of the plan is told to Stop the attempt
 * (a Stop leaves a tombstone on the agent, so a Launch that arrives late is refused there).
 *
 * Command ids are deterministic (launch/<job>/<attempt>/<node>, stop/<job>/<attempt>/<node>), so a retried
 * fan-out is idempotent on every agent.
 */
import type { Placement } from '../domain/plan.js';
import { isMistError } from '../../../protocol/src/errors.js';
import type { RankPid, RankPlacement, ReplyError } from '../../../protocol/src/types.js';
import type { CommandClient } from './commands.js';

export interface LaunchRequest {
  job: string;
  attempt: number;
  /** The Plan (DESIGN.md §4); its placement must be filled. */
  plan: { placement: Placement[] } & Record<string, unknown>;
  runtime: string;
  masterAddr: string;
  masterPort: number;
  env?: Record<string, string>;
  /** Whole fan-out deadline. */
  deadlineMs: number;
  /** Grace of the Stop sent on failure. */
  stopGraceSeconds?: number;
}

export interface NodeOutcome {
  node: string;
  ok: boolean;
  ranks?: RankPid[];
  error?: ReplyError;
}

export interface LaunchOutcome {
  ok: boolean;
  nodes: NodeOutcome[];
  /** Wall time of the fan-out (without the rollback). */
  seconds: number;
  rolledBack: boolean;
}

/** Groups a placement by node; local ranks are numbered by (device, rank) within each node. */
export function ranksByNode(placement: Placement[]): Map<string, RankPlacement[]> {
  const by = new Map<string, Placement[]>();
  for (const p of placement) {
    const list = by.get(p.node);
    if (list) list.push(p);
    else by.set(p.node, [p]);
  }
  const out = new Map<string, RankPlacement[]>();
  for (const [node, list] of by) {
    const sorted = [...list].sort((a, b) => a.device - b.device || a.rank - b.rank);
    out.set(
      node,
      sorted.map((p, localRank) => ({ rank: p.rank, localRank, device: p.device, stage: p.stage, dpRank: p.dpRank, tpRank: p.tpRank })),
    );
  }
  return out;
}

export async function launchPlan(client: CommandClient, req: LaunchRequest): Promise<LaunchOutcome> {
  const t0 = performance.now();
  const byNode = ranksByNode(req.plan.placement);
  const planJson = JSON.stringify(req.plan);
  const worldSize = req.plan.placement.length;
  const deadline = Date.now() + req.deadlineMs;
  const nodes = await Promise.all(
    [...byNode].map(async ([node, ranks]): Promise<NodeOutcome> => {
      try {
        const reply = await client.send(
          node,
          { kind: 'launch', job: req.job, attempt: req.attempt, planJson, ranks, worldSize, runtime: req.runtime, masterAddr: req.masterAddr, masterPort: req.masterPort, env: req.env ?? {} },
          { id: `launch/${req.job}/${req.attempt}/${node}`, timeoutMs: Math.max(1, deadline - Date.now()) },
        );
        if (!reply.ok) return { node, ok: false, error: reply.error };
        return { node, ok: true, ranks: reply.result?.kind === 'launch' ? reply.result.ranks : [] };
      } catch (e) {
        const err = isMistError(e) ? e.toJSON() : { code: 'UNAVAILABLE', message: String(e), retryable: true };
        return { node, ok: false, error: err };
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const ok = nodes.every((n) => n.ok);
  if (!ok) await stopPlan(client, req.job, req.attempt, [...byNode.keys()], req.stopGraceSeconds ?? 10, 'launch failed on another node');
  return { ok, nodes, seconds, rolledBack: !ok };
}

/** Tells every node to stop the attempt; returns the nodes that did not confirm. */
export async function stopPlan(client: CommandClient, job: string, attempt: number, nodes: string[], graceSeconds: number, reason: string): Promise<string[]> {
  const results = await Promise.all(
    nodes.map(async (node) => {
      try {
        const r = await client.send(node, { kind: 'stop', job, attempt, graceSeconds, reason }, { id: `stop/${job}/${attempt}/${node}`, timeoutMs: (graceSeconds + 15) * 1000 });
        return r.ok ? undefined : node;
      } catch {
        return node;
      }
    }),
  );
  return results.filter((n): n is string => n !== undefined);
}
