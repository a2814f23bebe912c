/** NATS connection options of the agent: the shared ones of protocol/ (user/password or creds, TLS, reconnect forever). */
export { natsConnectOptions, type NatsAuth } from '../../protocol/src/nats-options.js';
