/**
 * `mist run-local`: trains a plan on this machine with the reference runtime (agent/runtime/torch), one local
 * process per rank (gloo on a free loopback port; no NATS). Progress goes to stderr; with --json stdout is one
 * JSON document {"plan", "devices", "startStep", "steps": [{"step", "loss", "stepSeconds", "peakMemoryBytes",
 * "tokens", "stages"}], "finalLoss", "wallSeconds"}. Exit codes: 2 for a bad plan or a --devices mismatch, 1 when
 * a rank fails (the message carries the rank's stderr tail; every other rank is killed).
 */
import type { Command } from 'commander';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MistError, badInput } from '../../../../protocol/src/errors.js';
import type { Plan } from '../../domain/plan.js';
import { resolveModel } from '../../tuner/model.js';
import { validatePlan } from '../../tuner/predict.js';
import { findPython, referenceRuntimeScript, RankFailedError, requireTorch, runRanks, type RankLine } from '../../local/ranks.js';
import { intFlag, readJsonArg, required } from '../flags.js';
import { printJson } from '../output.js';
import { progressBar, stderrIsTty } from '../progress.js';

interface RunLocalOptions {
  plan?: string;
  devices?: string;
  steps: string;
  seed: string;
  json?: boolean;
  checkpointDir?: string;
  checkpointEvery?: string;
  resume?: boolean;
  data?: string;
  lr?: string;
}

export interface StepResult {
  step: number;
  loss: number | null;
  stepSeconds: number;
  peakMemoryBytes: number;
  tokens: number;
  stages: Array<{ stage: number; forwardSeconds: number; backwardSeconds: number; peakMemoryBytes: number }>;
}

type ModelInput = Parameters<typeof resolveModel>[0];

/** Ranks a plan needs: the sum over stages of dp × tp. */
export function planWorldSize(plan: Plan): number {
  return plan.stages.reduce((n, s) => n + s.dp * s.tp, 0);
}

/** Merges the per-stage step lines of one step into one record (loss from the last stage; max time and memory). */
export function mergeStepLines(lines: Array<Record<string, unknown>>): StepResult {
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  const stages: StepResult['stages'] = [];
  let loss: number | null = null;
  let stepSeconds = 0;
  let peak = 0;
  let tokens = 0;
  for (const l of lines) {
    if (typeof l.loss === 'number') loss = l.loss;
    stepSeconds = Math.max(stepSeconds, num(l.stepSeconds));
    peak = Math.max(peak, num(l.peakMemoryBytes));
    tokens = Math.max(tokens, num(l.tokens));
    for (const s of (Array.isArray(l.stages) ? l.stages : []) as Array<Record<string, unknown>>) {
      stages.push({ stage: num(s.stage), forwardSeconds: num(s.forwardSeconds), backwardSeconds: num(s.backwardSeconds), peakMemoryBytes: num(l.peakMemoryBytes) });
    }
  }
  stages.sort((a, b) => a.stage - b.stage);
  return { step: num(lines[0]?.step), loss, stepSeconds, peakMemoryBytes: peak, tokens, stages };
}

export function registerRunLocal(program: Command, summary: string): void {
  program
    .command('run-local')
    .description(summary)
    .option('--plan <file>', 'a Plan JSON file (DESIGN.md §4), e.g. from `mist plan --json` or `mist predict --json`')
    .option('--devices <n>', 'local devices (ranks) to use; must equal the plan\'s sum over stages of dp × tp')
    .option('--steps <k>', 'train until this step (a resumed run continues from its checkpoint)', '10')
    .option('--seed <s>', 'seed of the weights and the synthetic data', '0')
    .option('--data <dir>', 'token shards (index.json + uint16 .bin); default synthetic tokens (LLM) or built-in visual sentences (LVM)')
    .option('--lr <lr>', 'Adam learning rate (constant)')
    .option('--checkpoint-dir <dir>', 'write plan-independent checkpoints here')
    .option('--checkpoint-every <n>', 'checkpoint every N steps (with --checkpoint-dir)')
    .option('--resume', 'resume from the latest checkpoint in --checkpoint-dir (under any plan of the same model)', false)
    .option('--json', 'print one JSON document with the per-step results')
    .addHelpText('after', '\nExample:\n  mist predict --model tiny-llama --gpu cpu --nodes 1 --gpus-per-node 2 --global-batch 8 --tp 1 --pp 2 --dp 1 \\\n    --micro-batch 4 --grad-accum 2 --json > plan.json\n  mist run-local --plan plan.json --devices 2 --steps 10 --json')
    .action(async (opts: RunLocalOptions) => {
      const doc = readJsonArg('--plan', required('--plan', opts.plan));
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badInput('--plan', 'must hold a JSON object (a Plan, DESIGN.md §4)');
      const raw = doc as Plan;
      const plan: Plan = { ...raw, model: resolveModel((raw as { model?: unknown }).model as ModelInput, 'model') };
      validatePlan(plan);
      const world = planWorldSize(plan);
      const devices = intFlag('--devices', required('--devices', opts.devices), { min: 1 });
      if (devices !== world) {
        throw badInput('--devices', `the plan needs ${world} ranks (sum over stages of dp × tp), got ${devices}`, `run with --devices ${world}, or make a plan for ${devices} devices`);
      }
      const steps = intFlag('--steps', opts.steps, { min: 1 });
      const seed = intFlag('--seed', opts.seed, { min: 0 });
      const args = ['--plan', '', '--steps', String(steps), '--seed', String(seed)];
      if (opts.data) args.push('--data', opts.data);
      if (opts.lr !== undefined) {
        const lr = Number(opts.lr);
        if (!(lr > 0 && Number.isFinite(lr))) throw badInput('--lr', `expected a positive number, got "${opts.lr}"`);
        args.push('--lr', String(lr));
      }
      if (opts.checkpointEvery !== undefined && !opts.checkpointDir) throw badInput('--checkpoint-every', 'needs --checkpoint-dir');
      if (opts.resume && !opts.checkpointDir) throw badInput('--resume', 'needs --checkpoint-dir');
      if (opts.checkpointDir) {
        args.push('--checkpoint-dir', opts.checkpointDir);
        if (opts.checkpointEvery !== undefined) args.push('--checkpoint-every', String(intFlag('--checkpoint-every', opts.checkpointEvery, { min: 1 })));
        if (opts.resume) args.push('--resume');
      }
      const python = findPython();
      requireTorch(python);
      const dir = mkdtempSync(join(tmpdir(), 'mist-run-local-'));
      const planPath = join(dir, 'plan.json');
      writeFileSync(planPath, JSON.stringify(plan));
      args[1] = planPath;

      const started = Date.now();
      const byStep = new Map<number, Array<Record<string, unknown>>>();
      const results: StepResult[] = [];
      let startStep = 0;
      const pp = plan.stages.length;
      const tty = stderrIsTty();
      const bar = progressBar('training', { unit: 'steps', everyMs: 0 });
      const onLine = (l: RankLine): void => {
        const j = l.json;
        if (!j || typeof j.mist !== 'string') {
          if (!opts.json) process.stderr.write(`[rank ${l.rank}] ${l.text}\n`);
          return;
        }
        if (j.mist === 'start' && typeof j.startStep === 'number') startStep = j.startStep;
        if (j.mist !== 'step' || typeof j.step !== 'number') return;
        const list = byStep.get(j.step) ?? [];
        list.push(j);
        byStep.set(j.step, list);
        if (list.length === pp) {
          const r = mergeStepLines(list);
          byStep.delete(j.step);
          results.push(r);
          bar.update(r.step, steps, `loss ${r.loss === null ? '-' : r.loss.toFixed(4)} ${r.stepSeconds.toFixed(2)} s/step`);
        }
      };
      try {
        await runRanks({ python, script: referenceRuntimeScript(), args, world, onLine });
      } catch (e) {
        bar.stop();
        if (e instanceof RankFailedError) throw new MistError('INTERNAL', `run-local failed: ${e.message}`);
        throw e;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      bar.stop(tty && results.length ? `trained ${results.length} steps to step ${steps}` : undefined);
      results.sort((a, b) => a.step - b.step);
      const out = {
        plan: plan.id,
        devices,
        startStep,
        steps: results,
        finalLoss: results.length ? results[results.length - 1]!.loss : null,
        wallSeconds: (Date.now() - started) / 1000,
        ...(opts.checkpointDir ? { checkpointDir: opts.checkpointDir } : {}),
      };
      if (opts.json) printJson(out);
      else {
        process.stdout.write(`step  loss      s/step  peak memory\n`);
        for (const r of results) {
          process.stdout.write(`${String(r.step).padStart(4)}  ${r.loss === null ? '-'.padEnd(8) : r.loss.toFixed(6)}  ${r.stepSeconds.toFixed(3)}   ${(r.peakMemoryBytes / 2 ** 20).toFixed(2)} MiB\n`);
        }
      }
    });
}
