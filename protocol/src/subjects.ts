/**
 * The ONLY place NATS subject, stream, consumer and KV bucket/key strings are built (DESIGN.md §2). Every name
 * that comes from outside (node names, job names such as "ns/name") goes through `safeToken`, so a subject always
 * has exactly the tokens its builder intends.
 *
 *   commands   mist.v1.agent.<node>.cmd            request/reply, controller -> agent
 *   reports    mist.v1.report.<job>.<node>         JetStream stream MIST_REPORTS (de-dup by report id)
 *   register   mist.v1.controller.register         request/reply, agent -> controller (queue group "controllers")
 *   registry   KV bucket mist_agents, keys hello.<node> and hb.<node>
 */
import { MistError } from './errors.js';

export const SUBJECT_PREFIX = 'mist.v1';

/** JetStream stream holding every report. */
export const REPORTS_STREAM = 'MIST_REPORTS';
/** Durable pull consumer the (leader) controller reads MIST_REPORTS with. */
export const REPORTS_CONSUMER = 'mist_controller';
/** KV bucket holding agent registrations (hello.<node>) and heartbeats (hb.<node>). */
export const AGENTS_BUCKET = 'mist_agents';
/** Queue group controllers subscribe to agent -> controller requests with. */
export const CONTROLLER_QUEUE_GROUP = 'controllers';

// ---------------------------------------------------------------- tokens

const UNRESERVED = /^[A-Za-z0-9-]$/;
const HEX = '0123456789ABCDEF';
/** What `safeToken('')` returns: a lone `_`, which no non-empty input can produce. */
const EMPTY_TOKEN = '_';

/** UTF-8 bytes of one code point; lone surrogates get their generalised (WTF-8) 3-byte form so any JS string encodes. */
function codePointBytes(cp: number, out: number[]): void {
  if (cp < 0x80) out.push(cp);
  else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
  else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
}

/**
 * Encodes any string as a valid NATS subject token: only [A-Za-z0-9_-], never empty. ASCII letters, digits and
 * `-` stand for themselves; every other character is written as `_XX` per UTF-8 byte (uppercase hex), so `.` is
 * `_2E`, `/` is `_2F`, `_` is `_5F`; the empty string is `_`. The encoding is injective, and `parseToken` inverts it.
 *
 *   safeToken('node-1.example.com') === 'node-1_2Eexample_2Ecom'
 *   safeToken('team-a/llama')       === 'team-a_2Fllama'
 */
export function safeToken(name: string): string {
  if (typeof name !== 'string') throw new MistError('BAD_INPUT', `subject token: ${typeof name} is not a string`);
  if (name.length === 0) return EMPTY_TOKEN;
  let out = '';
  const bytes: number[] = [];
  for (const ch of name) {
    if (UNRESERVED.test(ch)) {
      out += ch;
      continue;
    }
    bytes.length = 0;
    codePointBytes(ch.codePointAt(0)!, bytes);
    for (const b of bytes) out += `_${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/**
 * Decodes generalised UTF-8 (accepting encoded lone surrogates); undefined when malformed. Overlong or otherwise
 * non-canonical byte sequences are caught by parseToken's final re-encoding check.
 */
function decodeBytes(bytes: number[]): string | undefined {
  let s = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    let need: number;
    let cp: number;
    if (b < 0x80) [need, cp] = [0, b];
    else if (b >= 0xc2 && b < 0xe0) [need, cp] = [1, b & 0x1f];
    else if (b >= 0xe0 && b < 0xf0) [need, cp] = [2, b & 0x0f];
    else if (b >= 0xf0 && b < 0xf5) [need, cp] = [3, b & 0x07];
    else return undefined;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return undefined;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp > 0x10ffff) return undefined;
    s += String.fromCodePoint(cp);
    i += need + 1;
  }
  return s;
}

/**
 * Inverse of `safeToken`: returns the original string, or throws BAD_INPUT when `token` is not exactly what
 * `safeToken` produces for some string (so `parseToken(t)` succeeds iff `safeToken(parseToken(t)) === t`).
 */
export function parseToken(token: string): string {
  const fail = (why: string): MistError =>
    new MistError('BAD_INPUT', `subject token ${JSON.stringify(token)}: ${why}; tokens are made by safeToken()`);
  if (typeof token !== 'string') throw new MistError('BAD_INPUT', `subject token: ${typeof token} is not a string`);
  if (token === EMPTY_TOKEN) return '';
  if (token.length === 0) throw fail('empty');
  let out = '';
  let i = 0;
  while (i < token.length) {
    const ch = token[i]!;
    if (ch !== '_') {
      if (!UNRESERVED.test(ch)) throw fail(`character ${JSON.stringify(ch)} is not allowed`);
      out += ch;
      i++;
      continue;
    }
    const bytes: number[] = [];
    while (i < token.length && token[i] === '_') {
      const hex = token.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) throw fail(`bad escape at offset ${i}`);
      bytes.push(parseInt(hex, 16));
      i += 3;
    }
    const decoded = decodeBytes(bytes);
    if (decoded === undefined) throw fail('escapes are not valid UTF-8');
    out += decoded;
  }
  if (safeToken(out) !== token) throw fail('not in canonical form');
  return out;
}

// ---------------------------------------------------------------- subjects

/** `mist.v1.agent.<node>.cmd`: the subject an agent answers commands on. */
export function agentCommandSubject(node: string): string {
  return `${SUBJECT_PREFIX}.agent.${safeToken(node)}.cmd`;
}

/** `mist.v1.agent.*.cmd`: every agent's command subject (for permissions and monitoring). */
export const AGENT_COMMAND_WILDCARD = `${SUBJECT_PREFIX}.agent.*.cmd`;

/** Node name from an agent command subject, or undefined when `subject` is not one. */
export function parseAgentCommandSubject(subject: string): string | undefined {
  const parts = subject.split('.');
  if (parts.length !== 5 || `${parts[0]}.${parts[1]}` !== SUBJECT_PREFIX || parts[2] !== 'agent' || parts[4] !== 'cmd') {
    return undefined;
  }
  return tryParseToken(parts[3]!);
}

/** `mist.v1.report.<job>.<node>`: where an agent publishes reports about `job` (job may be '' for node events). */
export function reportSubject(job: string, node: string): string {
  return `${SUBJECT_PREFIX}.report.${safeToken(job)}.${safeToken(node)}`;
}

/** `mist.v1.report.>`: every report; the subject filter of the MIST_REPORTS stream. */
export const REPORT_SUBJECT_ALL = `${SUBJECT_PREFIX}.report.>`;

/** `mist.v1.report.<job>.*`: every report about one job. */
export function jobReportsSubject(job: string): string {
  return `${SUBJECT_PREFIX}.report.${safeToken(job)}.*`;
}

/** `mist.v1.report.*.<node>`: every report from one node (an agent's publish permission). */
export function nodeReportsSubject(node: string): string {
  return `${SUBJECT_PREFIX}.report.*.${safeToken(node)}`;
}

/** Job and node from a report subject, or undefined when `subject` is not one. */
export function parseReportSubject(subject: string): { job: string; node: string } | undefined {
  const parts = subject.split('.');
  if (parts.length !== 5 || `${parts[0]}.${parts[1]}` !== SUBJECT_PREFIX || parts[2] !== 'report') return undefined;
  const job = tryParseToken(parts[3]!);
  const node = tryParseToken(parts[4]!);
  return job === undefined || node === undefined ? undefined : { job, node };
}

/** `mist.v1.controller.register`: agents send their AgentHello here (request/reply, queue group `controllers`). */
export const AGENT_REGISTER_SUBJECT = `${SUBJECT_PREFIX}.controller.register`;

// ---------------------------------------------------------------- registry KV keys

/** KV key of an agent's latest AgentHello in AGENTS_BUCKET. */
export function agentHelloKey(node: string): string {
  return `hello.${safeToken(node)}`;
}

/** KV key of an agent's latest Heartbeat in AGENTS_BUCKET. */
export function agentHeartbeatKey(node: string): string {
  return `hb.${safeToken(node)}`;
}

/** Watch patterns for AGENTS_BUCKET. */
export const AGENT_HELLO_KEYS = 'hello.*';
export const AGENT_HEARTBEAT_KEYS = 'hb.*';

/** What an AGENTS_BUCKET key holds and for which node, or undefined when it is not a registry key. */
export function parseAgentKey(key: string): { kind: 'hello' | 'heartbeat'; node: string } | undefined {
  const dot = key.indexOf('.');
  if (dot < 0) return undefined;
  const prefix = key.slice(0, dot);
  const kind = prefix === 'hello' ? 'hello' : prefix === 'hb' ? 'heartbeat' : undefined;
  if (kind === undefined) return undefined;
  const node = tryParseToken(key.slice(dot + 1));
  return node === undefined ? undefined : { kind, node };
}

function tryParseToken(token: string): string | undefined {
  try {
    return parseToken(token);
  } catch {
    return undefined;
  }
}
