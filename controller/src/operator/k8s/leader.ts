/**
 * Leader election on a coordination.k8s.io/v1 Lease (client-node has no elector; this follows client-go's
 * leaderelection): every `retryPeriod` a candidate reads the Lease; it takes it when it is free or when the
 * holder's record has not changed for the record's `leaseDurationSeconds` as measured on the candidate's own clock
 * from when it last *observed* a change (no trust in the holder's timestamps, so clock skew cannot make two
 * leaders); the leader renews every `retryPeriod` and steps down when it could not renew for `renewDeadline`.
 * Writes replace the Lease with its resourceVersion: two candidates racing for it get one 200 and one 409.
 * `acquireTime`/`renewTime` are MicroTime (six fractional digits: the API server refuses `toISOString()`'s three).
 */
import * as k8s from '@kubernetes/client-node';
import { errorText, httpCode } from './client.js';
import { formatMicroTime } from './status.js';

export interface LeaderElectionOptions {
  namespace: string;
  /** Lease name (default mist-controller). */
  name?: string;
  /** This candidate (default: $POD_NAME, else hostname_pid). */
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  /** Called (not awaited by the renew loop) when this candidate becomes the leader. */
  onStartedLeading(): void | Promise<void>;
  /** Called when leadership is lost (renewal failed for renewDeadline, or the Lease was taken). */
  onStoppedLeading(): void | Promise<void>;
  log?: (msg: string) => void;
  now?: () => number;
}

export const LEASE_DEFAULTS = { name: 'mist-controller', leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2 } as const;

export class LeaseElector {
  private readonly api: k8s.CoordinationV1Api;
  private readonly name: string;
  private readonly duration: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;
  private stopped = true;
  private leader = false;
  private lastRenew = 0;
  private observed: { key: string; at: number } | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Lease transitions seen when this candidate last acquired it. */
  transitions = 0;

  constructor(kc: k8s.KubeConfig, private readonly o: LeaderElectionOptions) {
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.name = o.name ?? LEASE_DEFAULTS.name;
    this.duration = o.leaseDurationSeconds ?? LEASE_DEFAULTS.leaseDurationSeconds;
    this.renewDeadlineMs = 1000 * (o.renewDeadlineSeconds ?? Math.min(LEASE_DEFAULTS.renewDeadlineSeconds, this.duration * (2 / 3)));
    this.retryMs = 1000 * (o.retryPeriodSeconds ?? Math.min(LEASE_DEFAULTS.retryPeriodSeconds, this.duration / 5));
    this.now = o.now ?? Date.now;
    if (!(this.retryMs < this.renewDeadlineMs && this.renewDeadlineMs < this.duration * 1000)) {
      throw new RangeError(`leader election: need retryPeriod (${this.retryMs / 1000} s) < renewDeadline (${this.renewDeadlineMs / 1000} s) < leaseDuration (${this.duration} s)`);
    }
  }

  get isLeader(): boolean {
    return this.leader;
  }

  get identity(): string {
    return this.o.identity;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /**
   * Stops campaigning. With `release` (a graceful shutdown) a leader empties the Lease's holder so that a standby
   * takes over at its next retry instead of after the lease duration.
   */
  async stop(o: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    if (this.leader) {
      this.leader = false;
      if (o.release !== false) await this.release().catch((e) => this.o.log?.(`lease ${this.name}: release failed: ${errorText(e)}`));
      await this.o.onStoppedLeading();
    }
  }

  /** Stops renewing without releasing or calling back (what a crash looks like to the others; for tests). */
  async abandon(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    this.leader = false;
  }

  private async release(): Promise<void> {
    const lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.o.namespace });
    if (lease.spec?.holderIdentity !== this.o.identity) return;
    const now = this.now();
    lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new k8s.V1MicroTime(now) };
    await this.api.replaceNamespacedLease({ name: this.name, namespace: this.o.namespace, body: lease });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew();
      } catch (e) {
        this.o.log?.(`lease ${this.name}: ${errorText(e)}`);
      }
      if (this.stopped) break;
      const now = this.now();
      if (this.leader) {
        if (ok) this.lastRenew = now;
        else if (now - this.lastRenew >= this.renewDeadlineMs || this.takenByOther) {
          this.leader = false;
          this.o.log?.(`lease ${this.name}: leadership lost (${this.takenByOther ? 'taken by another holder' : `not renewed for ${((now - this.lastRenew) / 1000).toFixed(1)} s`})`);
          await Promise.resolve(this.o.onStoppedLeading()).catch((e) => this.o.log?.(`onStoppedLeading: ${(e as Error).message}`));
        }
      } else if (ok) {
        this.leader = true;
        this.lastRenew = now;
        this.o.log?.(`lease ${this.name}: acquired by ${this.o.identity} (transitions ${this.transitions})`);
        void Promise.resolve()
          .then(() => this.o.onStartedLeading())
          .catch((e) => this.o.log?.(`onStartedLeading: ${(e as Error).message}`));
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, this.retryMs);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = undefined;
    }
  }

  private takenByOther = false;

  /** One round: true when this candidate holds the Lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    this.takenByOther = false;
    const now = this.now();
    const ns = this.o.namespace;
    let lease: k8s.V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name: this.name, namespace: ns });
    } catch (e) {
      if (httpCode(e) !== 404) throw e;
      try {
        await this.api.createNamespacedLease({
          namespace: ns,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.name, namespace: ns },
            spec: { holderIdentity: this.o.identity, leaseDurationSeconds: this.duration, acquireTime: new k8s.V1MicroTime(now), renewTime: new k8s.V1MicroTime(now), leaseTransitions: 0 },
          },
        });
        this.transitions = 0;
        return true;
      } catch (e2) {
        if (httpCode(e2) === 409) return false;
        throw e2;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const key = `${holder}|${timeText(spec.renewTime)}|${lease.metadata?.resourceVersion ?? ''}`;
    if (!this.observed || this.observed.key !== key) this.observed = { key, at: now };
    const recordDuration = spec.leaseDurationSeconds ?? this.duration;
    if (holder && holder !== this.o.identity && now < this.observed.at + recordDuration * 1000) {
      if (this.leader) this.takenByOther = true;
      return false;
    }
    const mine = holder === this.o.identity;
    const transitions = (spec.leaseTransitions ?? 0) + (mine ? 0 : 1);
    const body: k8s.V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.o.identity,
        leaseDurationSeconds: this.duration,
        acquireTime: mine && spec.acquireTime ? new k8s.V1MicroTime(Date.parse(timeText(spec.acquireTime))) : new k8s.V1MicroTime(now),
        renewTime: new k8s.V1MicroTime(now),
        leaseTransitions: transitions,
      },
    };
    try {
      const r = await this.api.replaceNamespacedLease({ name: this.name, namespace: ns, body });
      this.observed = { key: `${this.o.identity}|${timeText(r.spec?.renewTime)}|${r.metadata?.resourceVersion ?? ''}`, at: now };
      this.transitions = transitions;
      return true;
    } catch (e) {
      if (httpCode(e) === 409) return false;
      throw e;
    }
  }
}

/** A Lease time as text (client-node hands MicroTime back as a string or a Date). */
function timeText(t: unknown): string {
  if (t instanceof Date) return formatMicroTime(t.getTime());
  return typeof t === 'string' ? t : '';
}

/** The default candidate identity: $POD_NAME (the chart sets it), else hostname_pid. */
export function defaultIdentity(hostname: string): string {
  return process.env.POD_NAME?.trim() || `${hostname}_${process.pid}`;
}
