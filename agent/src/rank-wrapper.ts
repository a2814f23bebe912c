/**
 * The rank supervisor: `node rank-wrapper.js <rankDir>`. The agent starts it detached (its own process group and
 * session), so it outlives the agent. It starts the rank from the argv in <rankDir>/launch.json — no shell — in a
 * process group of its own (pgid = rank pid) with stdout/stderr appended straight to <rankDir>/stdout.log and
 * stderr.log, records the rank's pid and /proc start time in pid.json, and when the rank ends writes its exit
 * code and signal to exit.json (fsync'd), so an exit status is never lost while the agent is away.
 *
 * It ignores SIGTERM/SIGINT/SIGHUP: the agent stops a rank by signalling the rank's process group, never this one.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { readJson, writeJsonDurable } from './fsutil.js';
import { procStartTime } from './proc.js';

interface LaunchFile {
  argv: string[];
  cwd: string;
}

function main(): void {
  const rankDir = process.argv[2];
  if (!rankDir) {
    process.stderr.write('usage: rank-wrapper <rankDir>\n');
    process.exit(2);
  }
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => undefined);
  const launch = readJson<LaunchFile>(join(rankDir, 'launch.json'));
  const writeExit = (exitCode: number | null, signal: string | null, error?: string) => {
    writeJsonDurable(join(rankDir, 'exit.json'), { exitCode, signal, error, endedAtMs: Date.now() });
  };
  if (!launch || !Array.isArray(launch.argv) || launch.argv.length === 0) {
    writeExit(127, null, 'launch.json missing or invalid');
    process.exit(0);
  }
  const out = openSync(join(rankDir, 'stdout.log'), 'a', 0o600);
  const err = openSync(join(rankDir, 'stderr.log'), 'a', 0o600);
  let settled = false;
  const child = spawn(launch.argv[0]!, launch.argv.slice(1), {
    cwd: launch.cwd,
    detached: true,
    stdio: ['ignore', out, err],
    env: process.env,
  });
  child.once('error', (e) => {
    if (settled) return;
    settled = true;
    writeExit(127, null, `cannot start ${launch.argv[0]}: ${e.message}`);
    process.exit(0);
  });
  if (child.pid !== undefined) {
    writeJsonDurable(join(rankDir, 'pid.json'), {
      pid: child.pid,
      startTime: procStartTime(child.pid) ?? '',
      pgid: child.pid,
      wrapperPid: process.pid,
      wrapperStartTime: procStartTime(process.pid) ?? '',
    });
  }
  child.once('exit', (code, signal) => {
    if (settled) return;
    settled = true;
    writeExit(code, signal);
    process.exit(0);
  });
}

main();
