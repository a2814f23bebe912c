/** NATS connection of the controller: the shared options of protocol/ (user/password or creds, TLS, reconnect forever). */
import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { natsConnectOptions, type NatsAuth } from '../../../protocol/src/nats-options.js';

export type BusAuth = Omit<NatsAuth, 'inboxPrefix'>;

export function busConnectOptions(a: BusAuth): ConnectionOptions {
  return natsConnectOptions({ ...a, name: a.name ?? 'mist-controller' });
}

export function connectBus(a: BusAuth): Promise<NatsConnection> {
  return connect(busConnectOptions(a));
}
