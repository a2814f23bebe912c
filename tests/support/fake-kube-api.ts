/**
 * A faithful-enough loopback Kubernetes API server for the operator tests (no kube-apiserver here:
 * research/ecosystem.md V11). Real HTTP on 127.0.0.1, spoken to by @kubernetes/client-node 1.4 unchanged.
 *
 * - mistjobs.mist.io/v1alpha1 (namespaced): list (with metadata.resourceVersion), watch (?watch=true,
 *   resourceVersion, allowWatchBookmarks → BOOKMARK events, timeoutSeconds; a resourceVersion older than the
 *   compaction point → an ERROR event with a 410 Expired Status, as the real server does), create, get, replace
 *   (PUT), merge patch (application/merge-patch+json; json-patch refused with 415), delete; optimistic concurrency
 *   on metadata.resourceVersion (409 Conflict); finalizers (delete sets deletionTimestamp; the object goes when the
 *   last finalizer is removed); generation bumps on spec changes only; the status subresource (writes to the main
 *   resource ignore .status, writes to /status ignore everything but .status); 404 NotFound; 422 Invalid with the
 *   field path, validated with the chart CRD's openAPIV3Schema (ajv; x-kubernetes-* stripped, defaults applied,
 *   unknown fields pruned); of the CEL rules, the transition rules that make fields immutable are evaluated on
 *   updates (422, "spec.runtime: Invalid value: …: spec.runtime is immutable", as upstream words it); no other
 *   CEL rule.
 * - core/v1 events and events.k8s.io/v1 events: create (and list, for assertions).
 * - coordination.k8s.io/v1 leases: get, list, create, replace (409 on a stale resourceVersion), merge patch,
 *   delete; acquireTime/renewTime must be MicroTime (six fractional digits) or the request is a 400, as upstream.
 * - Fault injection: close every watch, expire every watch (410), compact history, fail the next N matching
 *   writes with a status code, and a request log for assertions.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { Ajv, type ValidateFunction } from 'ajv';
import { IMMUTABLE_FIELDS, transitionViolations } from '../../controller/src/operator/k8s/crd.js';

type Obj = Record<string, any>;

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  body: any;
  status: number;
}

interface Fault {
  count: number;
  code: number;
  method?: string;
  pathIncludes?: string;
}

interface WatchConn {
  res: ServerResponse;
  kind: string;
  ns: string | undefined;
  bookmarks: boolean;
  timer?: NodeJS.Timeout;
  bookmarkTimer?: NodeJS.Timeout;
}

const MICRO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** JSON merge patch (RFC 7386). */
export function applyMergePatch(target: unknown, patch: unknown): any {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Obj = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

function clone<T>(x: T): T {
  return x === undefined ? x : (JSON.parse(JSON.stringify(x)) as T);
}

/** OpenAPI v3 structural schema → ajv draft-07: x-kubernetes-* dropped, boolean exclusive bounds converted. */
function toAjv(node: any): any {
  if (Array.isArray(node)) return node.map(toAjv);
  if (node === null || typeof node !== 'object') return node;
  const out: Obj = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith('x-kubernetes-')) continue;
    if (k === 'exclusiveMinimum' && typeof v === 'boolean') continue;
    if (k === 'exclusiveMaximum' && typeof v === 'boolean') continue;
    if (k === 'minimum' && node.exclusiveMinimum === true) {
      out.exclusiveMinimum = v;
      continue;
    }
    if (k === 'maximum' && node.exclusiveMaximum === true) {
      out.exclusiveMaximum = v;
      continue;
    }
    if (k === 'properties') {
      out.properties = Object.fromEntries(Object.entries(v as Obj).map(([n, s]) => [n, toAjv(s)]));
      continue;
    }
    if (k === 'default' || k === 'enum') {
      out[k] = clone(v);
      continue;
    }
    out[k] = toAjv(v);
  }
  return out;
}

/** Structural pruning: drops fields the schema does not know (unless it preserves unknown fields). */
function prune(value: any, schema: any): any {
  if (!schema || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return schema.items ? value.map((v) => prune(v, schema.items)) : value;
  if (schema['x-kubernetes-preserve-unknown-fields'] && !schema.properties) return value;
  const out: Obj = {};
  for (const [k, v] of Object.entries(value)) {
    const sub = schema.properties?.[k];
    if (sub) out[k] = prune(v, sub);
    else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') out[k] = prune(v, schema.additionalProperties);
    else if (schema['x-kubernetes-preserve-unknown-fields'] || schema.additionalProperties === true) out[k] = v;
  }
  return out;
}

function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra) parts.push(extra);
  let p = '';
  for (const s of parts) p += /^\d+$/.test(s) ? `[${s}]` : `${p ? '.' : ''}${s}`;
  return p;
}

function status(code: number, reason: string, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...(details ? { details } : {}) };
}

const RESOURCES = {
  mistjobs: { group: 'mist.io', version: 'v1alpha1', kind: 'MistJob', listKind: 'MistJobList' },
  leases: { group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', listKind: 'LeaseList' },
  events: { group: '', version: 'v1', kind: 'Event', listKind: 'EventList' },
  'events.k8s.io': { group: 'events.k8s.io', version: 'v1', kind: 'Event', listKind: 'EventList' },
} as const;
type Kind = keyof typeof RESOURCES;

export interface FakeKubeOptions {
  /** The CRD (apiextensions.k8s.io/v1 object) whose schema validates MistJobs. */
  crd: Obj;
  /** Keep at most this many watch events of history (older resourceVersions get 410). Default 10,000. */
  historyLimit?: number;
  /** Send a BOOKMARK to bookmark-enabled watches this often (ms). Default 1000. */
  bookmarkEveryMs?: number;
}

export class FakeKubeApi {
  private server: Server | undefined;
  private rv = 1;
  /** Objects by `${kind}/${ns}/${name}`. */
  private readonly objects = new Map<string, Obj>();
  private readonly history: Array<{ rv: number; kind: string; ns: string; type: string; object: Obj }> = [];
  /** Watches from a resourceVersion below this get 410 Gone. */
  private compactedRv = 0;
  private goneWatches = 0;
  private readonly watches = new Set<WatchConn>();
  private readonly faults: Fault[] = [];
  private readonly validate: ValidateFunction;
  private readonly schema: Obj;
  readonly requests: RequestRecord[] = [];
  url = '';

  constructor(private readonly o: FakeKubeOptions) {
    const version = (o.crd.spec.versions as Obj[]).find((v) => v.name === 'v1alpha1') ?? o.crd.spec.versions[0];
    this.schema = version.schema.openAPIV3Schema;
    const ajv = new Ajv({ strict: false, allErrors: false, useDefaults: true, validateFormats: false });
    this.validate = ajv.compile(toAjv(this.schema));
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.closeWatches();
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = undefined;
  }

  /** A KubeConfig for client-node pointing at this server. */
  kubeConfig(namespace = 'default'): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'tester', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'tester', namespace }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** Writes a kubeconfig file for child processes (`mist controller --kubeconfig`). */
  writeKubeconfig(file: string, namespace = 'default'): string {
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'tester', user: { token: 'fake-token' } }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'tester', namespace } }],
        'current-context': 'fake',
      }),
    );
    return file;
  }

  // ---------------------------------------------------------------------------------------------------------
  // fault injection and inspection

  /** Ends every open watch (cleanly: the client re-watches from its resourceVersion). */
  closeWatches(): void {
    for (const w of [...this.watches]) this.endWatch(w);
  }

  /** Compacts history: every watch from an older resourceVersion will get 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history.length = 0;
  }

  /** Sends 410 Expired to every open watch and compacts (the client must relist). */
  expireWatches(): void {
    this.compact();
    for (const w of [...this.watches]) {
      this.send(w, { type: 'ERROR', object: status(410, 'Expired', 'too old resource version') });
      this.endWatch(w);
    }
  }

  /** The next `count` watch requests get 410 Expired whatever their resourceVersion (forces a relist). */
  forceGone(count = 1): void {
    this.goneWatches += count;
  }

  /** Fails the next `count` requests that match (default: any write) with `code`. */
  failNext(count: number, code: number, match: { method?: string; pathIncludes?: string } = {}): void {
    this.faults.push({ count, code, ...match });
  }

  get(kind: Kind, ns: string, name: string): Obj | undefined {
    return clone(this.objects.get(`${kind}/${ns}/${name}`));
  }

  list(kind: Kind, ns?: string): Obj[] {
    return [...this.objects.entries()].filter(([k]) => k.startsWith(`${kind}/${ns === undefined ? '' : `${ns}/`}`)).map(([, v]) => clone(v));
  }

  /** Events (core/v1 and events.k8s.io) about the object `name`. */
  eventsFor(name: string): Obj[] {
    return [...this.list('events'), ...this.list('events.k8s.io')].filter((e) => (e.involvedObject?.name ?? e.regarding?.name) === name);
  }

  get openWatches(): number {
    return this.watches.size;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  // ---------------------------------------------------------------------------------------------------------
  // HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(u.searchParams.entries());
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: any;
    const contentType = req.headers['content-type']?.split(';')[0]?.trim();
    const rec: RequestRecord = { method: req.method ?? 'GET', path: u.pathname, query, contentType, body: undefined, status: 0 };
    const reply = (code: number, obj: Obj) => {
      rec.status = code;
      this.requests.push(rec);
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    try {
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          return reply(400, status(400, 'BadRequest', 'the request body is not JSON'));
        }
      }
      rec.body = body;
      const write = rec.method !== 'GET';
      const f = this.faults.find((x) => x.count > 0 && (x.method ? x.method === rec.method : write) && (!x.pathIncludes || u.pathname.includes(x.pathIncludes)));
      if (f) {
        f.count--;
        return reply(f.code, status(f.code, f.code === 409 ? 'Conflict' : 'InternalError', `injected fault ${f.code}`));
      }
      const r = this.route(u.pathname);
      if (!r) return reply(404, status(404, 'NotFound', `the server could not find the requested resource (${u.pathname})`));
      if (rec.method === 'GET' && !r.name && (query.watch === 'true' || query.watch === '1')) {
        rec.status = 200;
        this.requests.push(rec);
        return this.watch(r.kind, r.ns, query, res);
      }
      const [code, out] = this.dispatch(rec.method, r, body, contentType, query);
      return reply(code, out);
    } catch (e) {
      return reply(500, status(500, 'InternalError', (e as Error).stack ?? String(e)));
    }
  }

  private route(path: string): { kind: Kind; ns: string | undefined; name?: string; sub?: string } | undefined {
    let m = /^\/apis\/mist\.io\/v1alpha1\/(?:namespaces\/([^/]+)\/)?mistjobs(?:\/([^/]+)(?:\/(status))?)?$/.exec(path);
    if (m) return { kind: 'mistjobs', ns: m[1], ...(m[2] ? { name: m[2] } : {}), ...(m[3] ? { sub: m[3] } : {}) };
    m = /^\/apis\/coordination\.k8s\.io\/v1\/(?:namespaces\/([^/]+)\/)?leases(?:\/([^/]+))?$/.exec(path);
    if (m) return { kind: 'leases', ns: m[1], ...(m[2] ? { name: m[2] } : {}) };
    m = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?events(?:\/([^/]+))?$/.exec(path);
    if (m) return { kind: 'events', ns: m[1], ...(m[2] ? { name: m[2] } : {}) };
    m = /^\/apis\/events\.k8s\.io\/v1\/(?:namespaces\/([^/]+)\/)?events(?:\/([^/]+))?$/.exec(path);
    if (m) return { kind: 'events.k8s.io', ns: m[1], ...(m[2] ? { name: m[2] } : {}) };
    return undefined;
  }

  private notFound(kind: Kind, name: string): [number, Obj] {
    const g = RESOURCES[kind].group;
    return [404, status(404, 'NotFound', `${kind === 'mistjobs' ? 'mistjobs.mist.io' : kind === 'leases' ? 'leases.coordination.k8s.io' : 'events'} "${name}" not found`, { name, group: g, kind })];
  }

  private conflict(kind: Kind, name: string): [number, Obj] {
    return [409, status(409, 'Conflict', `Operation cannot be fulfilled on ${kind} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind })];
  }

  private dispatch(method: string, r: { kind: Kind; ns: string | undefined; name?: string; sub?: string }, body: any, contentType: string | undefined, query: Record<string, string>): [number, Obj] {
    const { kind } = r;
    const ns = r.ns ?? 'default';
    const key = (n: string) => `${kind}/${ns}/${n}`;
    if (!r.name) {
      if (method === 'GET') {
        const items = this.list(kind, r.ns);
        const d = RESOURCES[kind];
        return [200, { apiVersion: d.group ? `${d.group}/${d.version}` : d.version, kind: d.listKind, metadata: { resourceVersion: String(this.rv) }, items }];
      }
      if (method === 'POST') {
        if (!body?.metadata?.name && !body?.metadata?.generateName) return [422, status(422, 'Invalid', 'metadata.name: Required value', { causes: [{ field: 'metadata.name', message: 'Required value' }] })];
        const name = body.metadata.name ?? `${body.metadata.generateName}${randomUUID().slice(0, 5)}`;
        if (this.objects.has(key(name))) return [409, status(409, 'AlreadyExists', `${kind} "${name}" already exists`, { name, kind })];
        const obj = clone(body);
        obj.metadata = { ...obj.metadata, name, namespace: ns, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
        delete obj.metadata.resourceVersion;
        delete obj.metadata.deletionTimestamp;
        if (kind === 'mistjobs') {
          delete obj.status;
          obj.metadata.generation = 1;
        }
        const bad = this.check(kind, obj, name);
        if (bad) return bad;
        return [201, this.store(kind, ns, obj, 'ADDED')];
      }
      return [405, status(405, 'MethodNotAllowed', `${method} is not allowed on a collection`)];
    }
    const name = r.name;
    const cur = this.objects.get(key(name));
    if (method === 'GET') return cur ? [200, clone(cur)] : this.notFound(kind, name);
    if (method === 'DELETE') {
      if (!cur) return this.notFound(kind, name);
      const pre = body?.preconditions;
      if (pre?.uid && pre.uid !== cur.metadata.uid) return [409, status(409, 'Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`)];
      if ((cur.metadata.finalizers ?? []).length) {
        if (cur.metadata.deletionTimestamp) return [200, clone(cur)];
        const next = clone(cur);
        next.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        next.metadata.deletionGracePeriodSeconds = 0;
        return [200, this.store(kind, ns, next, 'MODIFIED')];
      }
      this.remove(kind, ns, cur);
      return [200, { kind: 'Status', apiVersion: 'v1', status: 'Success', details: { name, kind } }];
    }
    if (method !== 'PUT' && method !== 'PATCH') return [405, status(405, 'MethodNotAllowed', `${method} is not allowed`)];
    if (!cur) return this.notFound(kind, name);
    let next: Obj;
    if (method === 'PATCH') {
      if (contentType !== 'application/merge-patch+json') {
        return [415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (this fake server); got ${contentType}`)];
      }
      const rvWanted = body?.metadata?.resourceVersion;
      if (rvWanted !== undefined && rvWanted !== cur.metadata.resourceVersion) return this.conflict(kind, name);
      next = applyMergePatch(clone(cur), body);
    } else {
      if (!body?.metadata) return [400, status(400, 'BadRequest', 'metadata is required')];
      if (body.metadata.name !== name) return [400, status(400, 'BadRequest', `the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`)];
      const rvWanted = body.metadata.resourceVersion;
      if (kind === 'mistjobs' && !rvWanted) return [422, status(422, 'Invalid', 'metadata.resourceVersion: Invalid value: 0x0: must be specified for an update', { causes: [{ field: 'metadata.resourceVersion', message: 'must be specified for an update' }] })];
      if (rvWanted !== undefined && rvWanted !== cur.metadata.resourceVersion) return this.conflict(kind, name);
      next = clone(body);
    }
    // server-owned metadata
    next.metadata = { ...next.metadata, name, namespace: ns, uid: cur.metadata.uid, creationTimestamp: cur.metadata.creationTimestamp };
    if (cur.metadata.deletionTimestamp) next.metadata.deletionTimestamp = cur.metadata.deletionTimestamp;
    else delete next.metadata.deletionTimestamp;
    if (kind === 'mistjobs') {
      if (r.sub === 'status') next = { ...clone(cur), status: next.status };
      else {
        if (cur.status === undefined) delete next.status;
        else next.status = clone(cur.status);
        next.metadata.generation = (cur.metadata.generation ?? 1) + (JSON.stringify(next.spec) === JSON.stringify(cur.spec) ? 0 : 1);
      }
      if (r.sub === 'status') next.metadata = clone(cur.metadata);
    }
    const bad = this.check(kind, next, name);
    if (bad) return bad;
    if (kind === 'mistjobs' && r.sub !== 'status') {
      const [violation] = transitionViolations(cur, next, IMMUTABLE_FIELDS);
      if (violation) {
        const field = violation.replace(/ is immutable$/, '');
        const value = field.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Obj)[k] : undefined), next);
        const msg = `Invalid value: ${JSON.stringify(typeof value)}: ${violation}`;
        return [422, status(422, 'Invalid', `MistJob.mist.io "${name}" is invalid: ${field}: ${msg}`, { name, group: 'mist.io', kind: 'MistJob', causes: [{ reason: 'FieldValueInvalid', message: msg, field }] })];
      }
    }
    if (kind === 'mistjobs' && r.sub !== 'status') next.metadata.generation = (cur.metadata.generation ?? 1) + (JSON.stringify(next.spec) === JSON.stringify(cur.spec) ? 0 : 1);
    if (JSON.stringify({ ...next, metadata: { ...next.metadata, resourceVersion: undefined } }) === JSON.stringify({ ...cur, metadata: { ...cur.metadata, resourceVersion: undefined } })) {
      return [200, clone(cur)]; // a no-op write keeps the resourceVersion, as the real server does
    }
    if (next.metadata.deletionTimestamp && !(next.metadata.finalizers ?? []).length) {
      this.remove(kind, ns, next);
      return [200, clone(next)];
    }
    void query;
    return [200, this.store(kind, ns, next, 'MODIFIED')];
  }

  /** Validation: MistJobs against the CRD schema (after pruning; defaults applied), Lease MicroTimes. */
  private check(kind: Kind, obj: Obj, name: string): [number, Obj] | undefined {
    if (kind === 'leases') {
      for (const f of ['acquireTime', 'renewTime']) {
        const v = obj.spec?.[f];
        if (v !== undefined && v !== null && !MICRO.test(String(v))) {
          return [400, status(400, 'BadRequest', `Lease in version "v1" cannot be handled as a Lease: unable to parse ${f} ${JSON.stringify(v)}: expected RFC 3339 with 6 fractional digits (MicroTime)`)];
        }
      }
      return undefined;
    }
    if (kind !== 'mistjobs') return undefined;
    const { metadata, ...rest } = obj;
    const pruned = prune(rest, this.schema);
    Object.assign(obj, pruned);
    for (const k of Object.keys(obj)) if (k !== 'metadata' && !(k in pruned)) delete obj[k];
    const doc = { ...obj, metadata: {} };
    if (!this.validate(doc)) {
      const e = this.validate.errors![0]!;
      const extra = e.keyword === 'required' ? String((e.params as Obj).missingProperty) : undefined;
      const field = fieldPath(e.instancePath, extra);
      const msg = e.keyword === 'required' ? 'Required value' : `Invalid value: ${JSON.stringify((e as Obj).data ?? null)}: ${e.message}`;
      return [422, status(422, 'Invalid', `MistJob.mist.io "${name}" is invalid: ${field}: ${msg}`, { name, group: 'mist.io', kind: 'MistJob', causes: [{ reason: e.keyword === 'required' ? 'FieldValueRequired' : 'FieldValueInvalid', message: msg, field }] })];
    }
    Object.assign(obj, { ...doc, metadata });
    return undefined;
  }

  private store(kind: Kind, ns: string, obj: Obj, type: 'ADDED' | 'MODIFIED'): Obj {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    this.objects.set(`${kind}/${ns}/${obj.metadata.name}`, clone(obj));
    this.publish(kind, ns, type, obj);
    return clone(obj);
  }

  private remove(kind: Kind, ns: string, obj: Obj): void {
    this.rv++;
    this.objects.delete(`${kind}/${ns}/${obj.metadata.name}`);
    const gone = clone(obj);
    gone.metadata.resourceVersion = String(this.rv);
    this.publish(kind, ns, 'DELETED', gone);
  }

  private publish(kind: string, ns: string, type: string, obj: Obj): void {
    this.history.push({ rv: this.rv, kind, ns, type, object: clone(obj) });
    const limit = this.o.historyLimit ?? 10_000;
    while (this.history.length > limit) {
      const old = this.history.shift()!;
      this.compactedRv = Math.max(this.compactedRv, old.rv);
    }
    for (const w of this.watches) if (w.kind === kind && (w.ns === undefined || w.ns === ns)) this.send(w, { type, object: obj });
  }

  private send(w: WatchConn, ev: Obj): void {
    if (!w.res.writableEnded) w.res.write(`${JSON.stringify(ev)}\n`);
  }

  private endWatch(w: WatchConn): void {
    clearTimeout(w.timer);
    clearInterval(w.bookmarkTimer);
    this.watches.delete(w);
    if (!w.res.writableEnded) w.res.end();
  }

  private watch(kind: Kind, ns: string | undefined, query: Record<string, string>, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const w: WatchConn = { res, kind, ns, bookmarks: query.allowWatchBookmarks === 'true' };
    const from = query.resourceVersion;
    if (from && from !== '0') {
      const n = Number(from);
      const forced = this.goneWatches > 0;
      if (forced) this.goneWatches--;
      if (forced || !Number.isInteger(n) || n < this.compactedRv) {
        res.write(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`) })}\n`);
        res.end();
        return;
      }
      for (const h of this.history) if (h.rv > n && h.kind === kind && (ns === undefined || h.ns === ns)) this.send(w, { type: h.type, object: h.object });
    } else {
      for (const o of this.list(kind, ns)) this.send(w, { type: 'ADDED', object: o });
    }
    this.watches.add(w);
    res.on('close', () => this.endWatch(w));
    const timeout = Number(query.timeoutSeconds);
    if (Number.isFinite(timeout) && timeout > 0) w.timer = setTimeout(() => this.endWatch(w), timeout * 1000);
    if (w.bookmarks) {
      w.bookmarkTimer = setInterval(() => {
        const d = RESOURCES[kind];
        this.send(w, { type: 'BOOKMARK', object: { apiVersion: `${d.group}/${d.version}`, kind: d.kind, metadata: { resourceVersion: String(this.rv) } } });
      }, this.o.bookmarkEveryMs ?? 1000);
    }
  }
}

/** The chart's CRD: buildCrd() (controller/src/operator/k8s/crd.ts, the source of charts/mist/crds/). */
export async function chartCrd(): Promise<Obj> {
  const m = (await import('../../controller/src/operator/k8s/crd.js')) as { buildCrd(): Obj };
  return m.buildCrd();
}
