/**
 * NATS connection options shared by the controller and the agents: user/password or a creds file, TLS files
 * passed through, reconnect forever. Here because protocol/ is the one module both sides may import.
 */
import { readFileSync } from 'node:fs';
import { credsAuthenticator, type ConnectionOptions } from '@nats-io/nats-core';

export interface NatsAuth {
  servers: string | string[];
  user?: string;
  password?: string;
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  name?: string;
  /** Reply-inbox prefix; agents use _INBOX_<node token> so a per-node permission can confine their subscriptions. */
  inboxPrefix?: string;
}

export function natsConnectOptions(a: NatsAuth): ConnectionOptions {
  const o: ConnectionOptions = {
    servers: a.servers,
    name: a.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
  };
  if (a.inboxPrefix) o.inboxPrefix = a.inboxPrefix;
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
