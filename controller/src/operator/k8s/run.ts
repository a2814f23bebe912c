/**
 * Wires the Kubernetes side around a controller: the MistJob adapter, and with leader election the Lease elector
 * whose callbacks make the controller lead (new store epoch, rebuild, reconcile) or step down (stop at once).
 * Without leader election the adapter starts right away (a single replica).
 */
import { hostname } from 'node:os';
import type * as k8s from '@kubernetes/client-node';
import type { Controller } from '../controller.js';
import { MistJobApi } from './client.js';
import { LeaseElector, defaultIdentity, type LeaderElectionOptions } from './leader.js';
import { MistJobOperator, type OperatorOptions } from './operator.js';

export interface KubeSideOptions {
  kc: k8s.KubeConfig;
  namespace: string;
  /** Constructed with `standby: true` when leaderElect is set. */
  controller: Controller;
  leaderElect: boolean;
  lease?: Partial<Pick<LeaderElectionOptions, 'name' | 'leaseDurationSeconds' | 'renewDeadlineSeconds' | 'retryPeriodSeconds'>>;
  identity?: string;
  operator?: Partial<Pick<OperatorOptions, 'stopTimeoutMs' | 'informer' | 'queue'>>;
  /** Called after leadership is lost and reconciling stopped (the CLI exits, as client-go controllers do). */
  onLostLeadership?: () => void;
  log?: (msg: string) => void;
}

export interface KubeSide {
  readonly identity: string;
  readonly elector: LeaseElector | undefined;
  /** The adapter of the current term (a new one per leadership term). */
  operator(): MistJobOperator | undefined;
  /** Graceful: stop the adapter, release the Lease (a standby takes over at its next retry). */
  stop(): Promise<void>;
  /** Abrupt: stop renewing without releasing anything (what a crash looks like; tests). */
  crash(): Promise<void>;
}

export function startKubeSide(o: KubeSideOptions): KubeSide {
  const identity = o.identity ?? defaultIdentity(hostname());
  const api = new MistJobApi(o.kc, o.namespace);
  let op: MistJobOperator | undefined;
  const newOperator = () =>
    new MistJobOperator({ api, controller: o.controller, instance: identity, ...(o.log ? { log: o.log } : {}), ...o.operator });
  let term = Promise.resolve();
  let stopping = false;
  if (!o.leaderElect) {
    op = newOperator();
    op.start();
    return {
      identity,
      elector: undefined,
      operator: () => op,
      stop: async () => op?.stop(),
      crash: async () => op?.stop(),
    };
  }
  const elector = new LeaseElector(o.kc, {
    namespace: o.namespace,
    identity,
    ...o.lease,
    ...(o.log ? { log: o.log } : {}),
    onStartedLeading: () => {
      term = term.then(async () => {
        if (!elector.isLeader) return;
        await o.controller.lead();
        if (!elector.isLeader) return void (await o.controller.stepDown());
        op = newOperator();
        op.start();
      });
      return term;
    },
    onStoppedLeading: async () => {
      await o.controller.stepDown();
      const cur = op;
      op = undefined;
      await cur?.stop();
      if (!stopping) o.onLostLeadership?.();
    },
  });
  elector.start();
  return {
    identity,
    elector,
    operator: () => op,
    async stop() {
      stopping = true;
      await term.catch(() => {});
      const cur = op;
      op = undefined;
      await cur?.stop();
      await elector.stop({ release: true });
    },
    async crash() {
      stopping = true;
      await elector.abandon();
      await term.catch(() => {});
      const cur = op;
      op = undefined;
      await o.controller.stepDown();
      await cur?.stop();
    },
  };
}
