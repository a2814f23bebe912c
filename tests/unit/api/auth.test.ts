import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMistError } from '../../../protocol/src/errors.js';
import { TokenStore, allows, defaultTokenFile, ensureTokenFile, generateToken, parseCookies, parseTokenFile, requestToken, tokenCookie } from '../../../controller/src/api/auth.js';

const A = 'aaaaaaaaaaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbbbbbbbbbb';

function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => isMistError(e) && e.code === 'BAD_INPUT' && re.test(e.message));
}

describe('api auth: token file', () => {
  it('parses "TOKEN ROLE [NAME]" lines, comments and blank lines', () => {
    const text = `# the ops team\n\n${A} admin alice   # trailing comment\n  ${B}\tread\n`;
    assert.deepEqual(parseTokenFile(text, 'tokens'), [
      { token: A, role: 'admin', name: 'alice' },
      { token: B, role: 'read', name: 'read@line4' },
    ]);
  });

  it('rejects a bad line with file:line and what is wrong', () => {
    rejects(() => parseTokenFile(`${A} admin\n${B} root\n`, '/etc/mist/tokens'), /^\/etc\/mist\/tokens:2: unknown role "root"; valid: read, admin$/);
    rejects(() => parseTokenFile(`short admin`, 'f'), /^f:1: the token must be 16\.\.512 characters/);
    rejects(() => parseTokenFile(`${A}`, 'f'), /^f:1: expected "TOKEN ROLE \[NAME\]", got 1 field/);
    rejects(() => parseTokenFile(`${A} admin a b`, 'f'), /^f:1: expected .* got 4 field/);
    rejects(() => parseTokenFile(`${A} admin ok\n${A} read dup`, 'f'), /^f:2: this token is listed twice$/);
    rejects(() => parseTokenFile(`${A} admin na/me`, 'f'), /^f:1: the name must be/);
    rejects(() => TokenStore.fromText('# nothing\n', 'f'), /^f: lists no tokens/);
    rejects(() => TokenStore.fromFile('/nonexistent/mist-tokens'), /^MIST_API_TOKENS: cannot read "\/nonexistent\/mist-tokens" \(ENOENT\)$/);
  });

  it('authenticates exactly the listed tokens', () => {
    const store = TokenStore.fromText(`${A} admin alice\n${B} read bob\n`, 'f');
    assert.equal(store.size, 2);
    assert.deepEqual(store.authenticate(A), { name: 'alice', role: 'admin' });
    assert.deepEqual(store.authenticate(B), { name: 'bob', role: 'read' });
    for (const t of [A.slice(1), A + 'a', '', undefined, null, 'x'.repeat(5000), A.toUpperCase()]) assert.equal(store.authenticate(t), null, String(t).slice(0, 30));
  });

  it('roles: read may read, only admin may mutate', () => {
    assert.equal(allows({ name: 'r', role: 'read' }, 'read'), true);
    assert.equal(allows({ name: 'r', role: 'read' }, 'admin'), false);
    assert.equal(allows({ name: 'a', role: 'admin' }, 'admin'), true);
  });

  it('generated tokens are valid file tokens and unique', () => {
    const t1 = generateToken();
    const t2 = generateToken();
    assert.notEqual(t1, t2);
    assert.match(t1, /^mist_[A-Za-z0-9_-]{43}$/);
    assert.equal(parseTokenFile(`${t1} admin`, 'f').length, 1);
  });

  it('ensureTokenFile creates a 0600 file with an admin token once, then returns the same token', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mist-auth-'));
    try {
      const path = join(dir, 'state', 'api-tokens');
      const first = ensureTokenFile(path);
      assert.equal(first.created, true);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'state')).mode & 0o077, 0, 'the state directory is private');
      assert.deepEqual(TokenStore.fromFile(path).authenticate(first.adminToken), { name: 'admin', role: 'admin' });
      const again = ensureTokenFile(path);
      assert.deepEqual(again, { adminToken: first.adminToken, created: false, path });
      writeFileSync(path, `${B} read viewer\n`);
      rejects(() => ensureTokenFile(path), /has no admin token/);
      assert.equal(readFileSync(path, 'utf8'), `${B} read viewer\n`, 'an existing file is never overwritten');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('defaultTokenFile lives under the state directory', () => {
    assert.equal(defaultTokenFile('/var/lib/mist'), '/var/lib/mist/api-tokens');
  });
});

describe('api auth: requests and cookies', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

  it('takes the bearer token first, then the mist_token cookie', () => {
    assert.equal(requestToken(req({ authorization: `Bearer ${A}` })), A);
    assert.equal(requestToken(req({ authorization: `bearer   ${A}  ` })), A);
    assert.equal(requestToken(req({ authorization: 'Basic abc', cookie: `mist_token=${B}` })), undefined, 'a non-bearer Authorization is not silently replaced by the cookie');
    assert.equal(requestToken(req({ cookie: `a=1; mist_token=${B}; c=3` })), B);
    assert.equal(requestToken(req({})), undefined);
  });

  it('parses cookies leniently', () => {
    const c = parseCookies('a=1; b="two"; bad; c=%E0%A4%A; =x; a=dup');
    assert.equal(c.get('a'), '1');
    assert.equal(c.get('b'), 'two');
    assert.equal(c.get('c'), '%E0%A4%A');
    assert.equal(c.size, 3);
  });

  it('the cookie is HttpOnly, SameSite=Strict, Path=/ (and Secure on request)', () => {
    assert.equal(tokenCookie('tok+/='), 'mist_token=tok%2B%2F%3D; HttpOnly; SameSite=Strict; Path=/');
    assert.match(tokenCookie('t', { secure: true }), /; Secure$/);
    assert.equal(parseCookies(tokenCookie('tok+/=').split(';')[0]).get('mist_token'), 'tok+/=');
  });
});
