/** NATS connection of the controller: user/password or creds, TLS files passed through, reconnect forever. */
import { readFileSync } from 'node:fs';
import { credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';

export interface BusAuth {
  servers: string | string[];
  user?: string;
  password?: string;
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  name?: string;
}

export function busConnectOptions(a: BusAuth): ConnectionOptions {
  const o: ConnectionOptions = {
    servers: a.servers,
    name: a.name ?? 'mist-controller',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
  };
  if (a.credsFile) o.authenticator = credsAuthenticator(readFileSync(a.credsFile));
  else if (a.user !== undefined) {
    o.user = a.user;
    o.pass = a.password ?? '';
  }
  if (a.tls && (a.tls.caFile || a.tls.certFile || a.tls.keyFile)) {
    o.tls = {};
    if (a.tls.caFile) o.tls.caFile = a.tls.caFile;
    if (a.tls.certFile) o.tls.certFile = a.tls.certFile;
    if (a.tls.keyFile) o.tls.keyFile = a.tls.keyFile;
  }
  return o;
}

export function connectBus(a: BusAuth): Promise<NatsConnection> {
  return connect(busConnectOptions(a));
}
