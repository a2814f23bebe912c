/**
 * Sends commands to agents by request/reply on mist.v1.agent.<node>.cmd, stamped with the controller's epoch.
 * No responder → UNAVAILABLE; no reply within the timeout → TIMEOUT; an undecodable reply → DECODE_ERROR.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { NoRespondersError, RequestError, TimeoutError } from '@nats-io/nats-core';
import { decodeReply, encodeCommand } from '../../../protocol/src/codec.js';
import { isMistError, MistError } from '../../../protocol/src/errors.js';
import { agentCommandSubject } from '../../../protocol/src/subjects.js';
import type { CommandBody, CommandReply } from '../../../protocol/src/types.js';

export interface SendOptions {
  /** Idempotency key; a fresh one is made when absent. */
  id?: string;
  timeoutMs?: number;
}

let counter = 0;

export class CommandClient {
  constructor(
    private readonly nc: NatsConnection,
    readonly epoch: number,
    private readonly defaults: { timeoutMs: number } = { timeoutMs: 10_000 },
  ) {
    if (!Number.isSafeInteger(epoch) || epoch < 1) throw new MistError('BAD_INPUT', `epoch: ${epoch} is not an integer ≥ 1`);
  }

  async send(node: string, body: CommandBody, opts: SendOptions = {}): Promise<CommandReply> {
    const id = opts.id ?? `${body.kind}/${process.pid}/${Date.now()}/${++counter}`;
    const data = encodeCommand({ id, epoch: this.epoch, sentAtMs: Date.now(), body });
    const timeout = opts.timeoutMs ?? this.defaults.timeoutMs;
    let msg;
    try {
      msg = await this.nc.request(agentCommandSubject(node), data, { timeout });
    } catch (e) {
      if (e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())) {
        throw new MistError('UNAVAILABLE', `agent ${node} is not answering commands (no responders)`, { cause: e });
      }
      if (e instanceof TimeoutError || (e as Error).name === 'TimeoutError') {
        throw new MistError('TIMEOUT', `agent ${node} did not reply to ${body.kind} ${id} within ${timeout} ms`, { cause: e });
      }
      throw new MistError('UNAVAILABLE', `command ${id} to ${node} failed: ${(e as Error).message}`, { cause: e });
    }
    try {
      return decodeReply(msg.data);
    } catch (e) {
      throw isMistError(e) ? e : new MistError('DECODE_ERROR', String(e));
    }
  }
}
