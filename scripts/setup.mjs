#!/usr/bin/env node
// Idempotent set-up that `npm test`, `npm start` and the benches run first, so a fresh Debian clone needs no
// reading: npm packages when missing or stale, a build when sources are newer than the output, and the system
// packages and services the mode needs (installed with apt-get when root; otherwise the exact command and exit 1).
//
// Usage: node scripts/setup.mjs [test|start|bench|bench-store|build]
// Plain Node with no dependencies: it runs before node_modules exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.argv[2] ?? 'test';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);

/** What each mode needs from the system. `test` also needs Chromium for the browser tests (tests/browser). */
const NEEDS = {
  test: { nats: true, torch: true, postgres: true, chromium: true },
  start: { nats: true, torch: true, postgres: false },
  bench: { nats: false, torch: false, postgres: false },
  'bench-store': { nats: false, torch: false, postgres: true },
  build: { nats: false, torch: false, postgres: false },
};

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.status !== 0) {
    log(`failed: ${cmd} ${args.join(' ')} (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

// 1. npm packages: reinstall when node_modules is missing or was installed from another lockfile.
function ensureNpmPackages() {
  const lock = join(root, 'package-lock.json');
  const stamp = join(root, 'node_modules', '.mist-lock-hash');
  const want = createHash('sha256').update(readFileSync(lock)).digest('hex');
  const have = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
  if (have === want && existsSync(join(root, 'node_modules', '.bin', 'tsc'))) return;
  log('installing npm packages (npm ci)');
  run('npm', ['ci', '--no-audit', '--no-fund']);
  writeFileSync(stamp, want + '\n');
}

// 2. Build when any source is newer than the last build (tsc is incremental, so a rebuild is cheap).
const SOURCES = ['scripts/copy-assets.mjs', 'protocol/src', 'protocol/gen', 'controller/src', 'agent/src', 'tests', 'bench', 'tsconfig.json', 'package.json'];
function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}
function ensureBuilt(always) {
  const stamp = join(root, 'dist', '.build-stamp');
  const built = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
  const newest = Math.max(...SOURCES.map((s) => newestMtime(join(root, s))));
  if (!always && built >= newest) return;
  log(always ? 'type-checking and building (tsc)' : 'sources changed: building (tsc)');
  run('npm', ['run', '--silent', 'build']);
  writeFileSync(stamp, new Date().toISOString() + '\n');
}

// 3. System packages from Debian.
function hasNatsServer() {
  return existsSync('/usr/sbin/nats-server') || spawnSync('sh', ['-c', 'command -v nats-server'], { stdio: 'ignore' }).status === 0;
}
function hasTorch() {
  const python = process.env.MIST_PYTHON || '/usr/bin/python3';
  if (!existsSync(python)) return false;
  return spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}
let aptUpdated = false;
function aptInstall(packages, why) {
  if (!isRoot) {
    log(`missing ${why}. Install it with:\n\n    sudo apt-get install -y ${packages.join(' ')}\n`);
    process.exit(1);
  }
  log(`installing ${packages.join(' ')} from Debian (${why})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    run('apt-get', ['update', '-q'], { env });
    aptUpdated = true;
  }
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { env });
}
/** Debian's Chromium drives the browser tests (playwright-core; MIST_CHROMIUM overrides the path). */
function hasChromium() {
  return existsSync(process.env.MIST_CHROMIUM || '/usr/bin/chromium');
}
function ensureSystemPackages(needs) {
  const missing = [];
  if (needs.nats && !hasNatsServer()) missing.push('nats-server');
  if (needs.torch && !hasTorch()) missing.push('python3-torch');
  if (needs.chromium && !hasChromium()) missing.push('chromium');
  if (missing.length) aptInstall(missing, missing.join(' and '));
  if (needs.torch && !hasTorch()) {
    log('python3-torch is installed but `/usr/bin/python3 -c "import torch"` fails; set MIST_PYTHON to an interpreter with torch');
    process.exit(1);
  }
}

// 4. PostgreSQL for the plan-store tests: MIST_TEST_PG_URL, default the local server with trust auth.
const PG_URL = process.env.MIST_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';
function pgAnswers(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname, port: Number(u.port || 5432) });
    const done = (ok) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
async function ensurePostgres() {
  if (await pgAnswers(PG_URL)) return;
  const local = ['127.0.0.1', 'localhost', '::1'].includes(new URL(PG_URL).hostname);
  if (!local || !isRoot) {
    log(`no PostgreSQL answers at ${PG_URL}. Start one (as root: apt-get install -y postgresql && pg_ctlcluster --skip-systemctl-redirect 15 main start), or point MIST_TEST_PG_URL at a server`);
    process.exit(1);
  }
  if (!existsSync('/usr/bin/pg_ctlcluster')) aptInstall(['postgresql'], 'PostgreSQL for the plan-store tests');
  const versions = readdirSync('/etc/postgresql');
  if (!versions.length) { log('postgresql is installed but has no cluster under /etc/postgresql'); process.exit(1); }
  const version = versions.sort().at(-1);
  // A server we start for tests: loopback-only trust auth, as on the project's CI machines.
  const hba = `/etc/postgresql/${version}/main/pg_hba.conf`;
  const conf = readFileSync(hba, 'utf8');
  if (!/^host\s+all\s+all\s+127\.0\.0\.1\/32\s+trust/m.test(conf)) writeFileSync(hba, 'host all all 127.0.0.1/32 trust\n' + conf);
  log(`starting the local PostgreSQL ${version} cluster`);
  run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start']);
  const db = new URL(PG_URL).pathname.slice(1) || 'test';
  try {
    execFileSync('su', ['postgres', '-c', `createdb ${db}`], { stdio: 'ignore' });
  } catch {
    /* already exists */
  }
  if (!(await pgAnswers(PG_URL))) { log(`started PostgreSQL but ${PG_URL} still does not answer`); process.exit(1); }
}

const needs = NEEDS[mode];
if (!needs) {
  log(`unknown mode "${mode}"; valid: ${Object.keys(NEEDS).join(', ')}`);
  process.exit(2);
}
ensureNpmPackages();
ensureBuilt(mode === 'test' || mode === 'build');
ensureSystemPackages(needs);
if (needs.postgres) await ensurePostgres();
