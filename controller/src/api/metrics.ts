/**
 * The controller's Prometheus registry (prom-client 15). The API creates it with the process metrics
 * (`process_*`, `nodejs_*`), `mist_build_info` and the HTTP metrics; the core registers its own metrics
 * (`mist_jobs{phase}`, `mist_reconcile_total`, …) on the same `registry`. Conventions (docs/api.md):
 * prefix `mist_`, base units (`_seconds`, `_bytes`), counters end in `_total`, bounded label values only.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsRegistry {
  registry: Registry;
  httpRequestsTotal: Counter<'method' | 'route' | 'code'>;
  httpRequestDuration: Histogram<'method' | 'route' | 'code'>;
  buildInfo: Gauge<'version' | 'node'>;
  /** Open dashboard WebSocket connections (api/ws.ts sets it). */
  websocketClients: Gauge;
  /** Messages sent to WebSocket clients, by type (snapshot, delta, hello, error). */
  websocketMessages: Counter<'type'>;
  /** Records one finished HTTP request. `route` is the route pattern (e.g. `/api/v1/jobs/:name`), never the raw path. */
  observeRequest(method: string, route: string, code: number, seconds: number): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** HTTP methods outside this set are counted as `OTHER` so a client cannot create label values at will. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export function createMetrics(opts: { version?: string; defaultMetrics?: boolean } = {}): MetricsRegistry {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const buildInfo = new Gauge({
    name: 'mist_build_info',
    help: 'Always 1; labels carry the Mist version and the Node.js version.',
    labelNames: ['version', 'node'] as const,
    registers: [registry],
  });
  buildInfo.set({ version: opts.version ?? '0.0.0', node: process.version }, 1);
  const httpRequestsTotal = new Counter({
    name: 'mist_http_requests_total',
    help: 'HTTP requests served by the controller API, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'code'] as const,
    registers: [registry],
  });
  const httpRequestDuration = new Histogram({
    name: 'mist_http_request_duration_seconds',
    help: 'Time from receiving an HTTP request to finishing its response, in seconds.',
    labelNames: ['method', 'route', 'code'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const websocketClients = new Gauge({ name: 'mist_websocket_clients', help: 'Open dashboard WebSocket connections on /ws.', registers: [registry] });
  const websocketMessages = new Counter({
    name: 'mist_websocket_messages_sent_total',
    help: 'Messages sent to dashboard WebSocket clients, by type (hello, snapshot, delta, error).',
    labelNames: ['type'] as const,
    registers: [registry],
  });
  return {
    registry,
    httpRequestsTotal,
    httpRequestDuration,
    buildInfo,
    websocketClients,
    websocketMessages,
    observeRequest(method, route, code, seconds) {
      const labels = { method: KNOWN_METHODS.has(method) ? method : 'OTHER', route, code: String(code) };
      httpRequestsTotal.inc(labels);
      httpRequestDuration.observe(labels, seconds);
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
