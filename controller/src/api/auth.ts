/**
 * Bearer-token authentication for the controller API (docs/api.md, "Authentication").
 *
 * Tokens live in the file named by MIST_API_TOKENS: one `TOKEN ROLE [NAME]` per line, `#` starts a comment,
 * blank lines are ignored. ROLE is `read` (every GET) or `admin` (also submit and cancel). A bad line is
 * rejected at startup with `file:line`. Tokens are compared in constant time (sha-256 digests compared with
 * `timingSafeEqual`, every entry visited).
 *
 * A request authenticates with `Authorization: Bearer TOKEN`, or with the `mist_token` cookie that the
 * dashboard's first visit with `?token=` sets (HttpOnly, SameSite=Strict, Path=/).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { dirname, join } from 'node:path';
import { MistError } from '../../../protocol/src/errors.js';

export const ROLES = ['read', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  name: string;
  role: Role;
}

export interface TokenEntry extends Principal {
  token: string;
}

/** The cookie that carries the token for browser requests (API and WebSocket). */
export const TOKEN_COOKIE = 'mist_token';

/** File name of the token file under MIST_STATE_DIR (written by `mist up`, read by the client commands). */
export const TOKEN_FILE_NAME = 'api-tokens';

/** Tokens are at least 16 characters from the base64/base64url/URL-safe alphabet. */
const TOKEN_RE = /^[A-Za-z0-9._~+/=-]{16,512}$/;
const NAME_RE = /^[A-Za-z0-9._@-]{1,128}$/;

export function defaultTokenFile(stateDir: string = process.env.MIST_STATE_DIR || '.mist'): string {
  return join(stateDir, TOKEN_FILE_NAME);
}

/** A new random token: `mist_` + 32 random bytes in base64url (43 characters). */
export function generateToken(): string {
  return `mist_${randomBytes(32).toString('base64url')}`;
}

/** Parses the text of a token file; `source` names it in errors (`source:line: …`). */
export function parseTokenFile(text: string, source: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const where = `${source}:${i + 1}`;
    const hash = raw.search(/(^|\s)#/);
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line === '') return;
    const fields = line.split(/\s+/);
    if (fields.length < 2 || fields.length > 3) {
      throw new MistError('BAD_INPUT', `${where}: expected "TOKEN ROLE [NAME]", got ${fields.length} field(s)`);
    }
    const [token, role, name] = fields;
    if (!TOKEN_RE.test(token)) {
      throw new MistError('BAD_INPUT', `${where}: the token must be 16..512 characters of A-Z a-z 0-9 . _ ~ + / = - (got ${token.length} characters)`);
    }
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new MistError('BAD_INPUT', `${where}: unknown role "${role}"; valid: ${ROLES.join(', ')}`);
    }
    if (name !== undefined && !NAME_RE.test(name)) {
      throw new MistError('BAD_INPUT', `${where}: the name must be 1..128 characters of A-Z a-z 0-9 . _ @ - (got "${name}")`);
    }
    if (seen.has(token)) throw new MistError('BAD_INPUT', `${where}: this token is listed twice`);
    seen.add(token);
    entries.push({ token, role: role as Role, name: name ?? `${role}@line${i + 1}` });
  });
  return entries;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export class TokenStore {
  private readonly entries: Array<{ digest: Buffer; principal: Principal }>;

  constructor(entries: readonly TokenEntry[]) {
    this.entries = entries.map((e) => ({ digest: digest(e.token), principal: { name: e.name, role: e.role } }));
  }

  /** Parses a token file's text; at least one token is required. */
  static fromText(text: string, source: string): TokenStore {
    const entries = parseTokenFile(text, source);
    if (entries.length === 0) throw new MistError('BAD_INPUT', `${source}: lists no tokens; add a line "TOKEN admin NAME"`);
    return new TokenStore(entries);
  }

  /** Reads the token file (MIST_API_TOKENS); a missing or bad file is BAD_INPUT naming it. */
  static fromFile(path: string): TokenStore {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new MistError('BAD_INPUT', `MIST_API_TOKENS: cannot read "${path}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
    }
    return TokenStore.fromText(text, path);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The principal a token belongs to, or null. Constant time in the token's content: every entry is compared. */
  authenticate(token: string | undefined | null): Principal | null {
    if (typeof token !== 'string' || token.length === 0 || token.length > 4096) return null;
    const d = digest(token);
    let found: Principal | null = null;
    for (const e of this.entries) {
      if (timingSafeEqual(d, e.digest) && found === null) found = e.principal;
    }
    return found;
  }
}

/** Whether a principal may use a route that needs `need`. */
export function allows(principal: Principal, need: Role): boolean {
  return need === 'read' || principal.role === 'admin';
}

/** Cookies of a request, by name (first occurrence wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    const k = eq < 0 ? '' : part.slice(0, eq).trim();
    if (k === '') continue;
    let v = part.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    if (!out.has(k)) {
      try {
        out.set(k, decodeURIComponent(v));
      } catch {
        out.set(k, v);
      }
    }
  }
  return out;
}

/** The token a request carries: `Authorization: Bearer …` first, then the `mist_token` cookie. */
export function requestToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  return parseCookies(req.headers.cookie).get(TOKEN_COOKIE);
}

/** Authenticates a request (for the REST routes and, later, the WebSocket upgrade). */
export function authenticateRequest(req: IncomingMessage, tokens: TokenStore): Principal | null {
  return tokens.authenticate(requestToken(req));
}

/** The Set-Cookie value that stores a token for the dashboard. */
export function tokenCookie(token: string, opts: { secure?: boolean } = {}): string {
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/${opts.secure ? '; Secure' : ''}`;
}

/**
 * Makes sure a token file exists at `path` and returns an admin token from it. When the file is missing it is
 * created (parent directories 0700, the file 0600) with one new admin token; when it exists, its first admin
 * token is returned (BAD_INPUT when it has none or does not parse).
 */
export function ensureTokenFile(path: string): { adminToken: string; created: boolean; path: string } {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const adminToken = generateToken();
    const text = [
      '# Mist API tokens: one "TOKEN ROLE [NAME]" per line; ROLE is read or admin. Keep this file private (0600).',
      `${adminToken} admin admin`,
      '',
    ].join('\n');
    try {
      writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
      return { adminToken, created: true, path };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // Another process created it first: fall through and read theirs.
    }
  }
  const entries = parseTokenFile(readFileSync(path, 'utf8'), path);
  const admin = entries.find((e) => e.role === 'admin');
  if (!admin) throw new MistError('BAD_INPUT', `${path}: has no admin token; add a line "TOKEN admin NAME"`);
  return { adminToken: admin.token, created: false, path };
}
