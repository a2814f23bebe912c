/**
 * From what the agents say (JetStream reports, Status replies) and what the registry sees (lost nodes) to the
 * lifecycle's level-based `AttemptObservation` (domain/lifecycle.ts). One `AttemptTracker` per (job, attempt):
 * every input is idempotent (sets keyed by rank, the latest step by step number), so a report delivered twice —
 * after an agent restart, a lost ack or a controller restart — changes nothing.
 *
 * Checkpoints: the reference runtime prints `{"mist":"checkpoint","step":N,"dir":D}` on rank 0's stdout, which the
 * agent forwards as a log line; `checkpointFromLine` reads it.
 */
import type { FailureClass } from '../../../protocol/src/failure.js';
import type { Report, RankStatus } from '../../../protocol/src/types.js';
import type { AttemptObservation, RankFailure } from '../domain/lifecycle.js';

/** How long a user-error exit waits for a peer's crash or kill to explain it (see effectiveFailures). */
export const COLLATERAL_WINDOW_MS = 2000;

export class AttemptTracker {
  readonly started = new Set<number>();
  readonly succeeded = new Set<number>();
  readonly failures = new Map<number, RankFailure>();
  /** Ranks known to be gone (exited, or stopped and confirmed). */
  readonly gone = new Set<number>();
  stopConfirmed = false;
  lastStep?: { step: number; time: number };
  checkpoint?: { step: number; uri: string };

  constructor(
    readonly attempt: number,
    /** Ranks of the attempt (the placement's size). */
    readonly world: number,
    /** The attempt was told to stop by the controller: exits after it are not failures of their own. */
    public stopRequested = false,
  ) {}

  rankStarted(rank: number): void {
    this.started.add(rank);
  }

  rankExited(rank: number, node: string, exit: { exitCode?: number; signal?: string; failureClass: FailureClass; message?: string }, time: number): void {
    this.started.add(rank);
    this.gone.add(rank);
    if (exit.exitCode === 0 && !exit.signal) {
      this.succeeded.add(rank);
      return;
    }
    if (this.stopRequested || this.failures.has(rank)) return;
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode ?? '?'}`;
    this.failures.set(rank, {
      rank,
      node,
      class: exit.failureClass,
      ...(exit.exitCode !== undefined ? { exitCode: exit.exitCode } : {}),
      message: exit.message ?? `rank ended with ${how}`,
      time,
    });
  }

  step(step: number, time: number): void {
    if (!this.lastStep || step > this.lastStep.step) this.lastStep = { step, time };
  }

  checkpointAt(step: number, uri: string): void {
    if (!this.checkpoint || step > this.checkpoint.step) this.checkpoint = { step, uri };
  }

  /**
   * Failures as the lifecycle should see them. When one rank crashes or is killed, its peers usually die of a
   * broken collective (gloo: "Connection closed by peer", exit 1), which the agent classifies as user_error; a
   * user error within `COLLATERAL_WINDOW_MS` of another rank's non-user failure is taken for that collateral
   * damage and left out (a genuine user error recurs in the next attempt and still fails the job there).
   */
  effectiveFailures(): RankFailure[] {
    const all = [...this.failures.values()];
    const other = all.filter((f) => f.class !== 'user_error');
    const kept = all.filter((f) => f.class !== 'user_error' || !other.some((o) => Math.abs(o.time - f.time) <= COLLATERAL_WINDOW_MS));
    return kept.sort((a, b) => a.time - b.time || a.rank - b.rank);
  }

  /** True when the first failure is a user error that may still turn out to be collateral (the caller waits a moment). */
  pendingUserError(now: number): boolean {
    const f = this.effectiveFailures()[0];
    return !!f && f.class === 'user_error' && now - f.time < COLLATERAL_WINDOW_MS;
  }

  observation(): AttemptObservation {
    const allGone = this.world > 0 && this.gone.size >= this.world;
    return {
      attempt: this.attempt,
      started: this.started.size,
      succeeded: this.succeeded.size,
      failures: this.effectiveFailures(),
      stopped: this.stopConfirmed || allGone,
      ...(this.lastStep ? { lastStep: { ...this.lastStep } } : {}),
      ...(this.checkpoint ? { checkpoint: { ...this.checkpoint } } : {}),
    };
  }
}

/** A checkpoint announcement of the reference runtime, or undefined. */
export function checkpointFromLine(line: string): { step: number; uri: string } | undefined {
  if (!line.startsWith('{"mist":"checkpoint"')) return undefined;
  try {
    const j = JSON.parse(line) as { step?: unknown; dir?: unknown };
    if (typeof j.step === 'number' && Number.isInteger(j.step) && j.step > 0) return { step: j.step, uri: typeof j.dir === 'string' ? j.dir : '' };
  } catch {
    /* not a checkpoint line after all */
  }
  return undefined;
}

/** Applies one report to a tracker (the caller picked the tracker of the report's job and attempt). */
export function applyReport(t: AttemptTracker, r: Report, now: number): void {
  const b = r.body;
  switch (b.kind) {
    case 'rankStarted':
      t.rankStarted(b.rank);
      break;
    case 'rankExited':
      t.rankExited(b.rank, r.node, { ...(b.exitCode !== undefined ? { exitCode: b.exitCode } : {}), ...(b.signal ? { signal: b.signal } : {}), failureClass: b.failureClass }, now);
      break;
    case 'stepProfile':
      t.step(b.step, now);
      break;
    case 'logTail':
      if (b.stream === 'stdout') {
        for (const line of b.lines) {
          const c = checkpointFromLine(line);
          if (c) t.checkpointAt(c.step, c.uri);
        }
      }
      break;
    default:
      break;
  }
}

/** Rebuilds a tracker from agents' Status replies (controller restart): the ranks of `attempt` they know. */
export function applyStatus(t: AttemptTracker, node: string, ranks: readonly RankStatus[], now: number): void {
  for (const s of ranks) {
    if (s.attempt !== t.attempt) continue;
    if (s.state === 'exited' && s.exit) t.rankExited(s.rank, node, { ...(s.exit.exitCode !== undefined ? { exitCode: s.exit.exitCode } : {}), ...(s.exit.signal ? { signal: s.exit.signal } : {}), failureClass: s.exit.failureClass }, now);
    else if (s.state === 'running' || s.state === 'starting' || s.state === 'stopping') t.rankStarted(s.rank);
  }
}
