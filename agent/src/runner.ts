/**
 * The rank runner: spawns ranks through the rank wrapper (rank-wrapper.ts), tails their output files, parses step
 * profiles, notices exits, stops ranks by process group, and adopts ranks left running by a previous agent process.
 *
 * State dir layout (per rank): <stateDir>/jobs/<job token>/<attempt>/
 *     plan.json                 the Plan (MIST_PLAN_FILE)
 *     stopped                   tombstone: a Stop arrived for this attempt; later Launches are refused
 *     rank-<r>/launch.json      argv + cwd for the wrapper
 *     rank-<r>/pid.json         rank pid, /proc start time, pgid, wrapper pid + start time (written by the wrapper)
 *     rank-<r>/exit.json        exit code / signal (written by the wrapper, fsync'd)
 *     rank-<r>/rank.json        the agent's record: placement, stop requested, what has been reported, log offsets
 *     rank-<r>/stdout.log, stderr.log
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readSync, readdirSync, rmSync, statSync, truncateSync, appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MistError } from '../../protocol/src/errors.js';
import { safeToken } from '../../protocol/src/subjects.js';
import type { LaunchCommand, RankExitedReport, RankPid, RankStatus, ReportBody } from '../../protocol/src/types.js';
import { classifyExit } from './classify.js';
import { checkJobEnv, rankEnv } from './env.js';
import { readJson, writeFileDurable, writeJsonDurable } from './fsutil.js';
import { groupAlive, isAlive, signalGroup } from './proc.js';
import { parseProfileLine } from './profile.js';
import { expandArgv, type RuntimeTable } from './runtimes.js';

const WRAPPER = join(dirname(fileURLToPath(import.meta.url)), 'rank-wrapper.js');
const STREAMS = ['stdout', 'stderr'] as const;
type Stream = (typeof STREAMS)[number];

export interface PidFile {
  pid: number;
  startTime: string;
  pgid: number;
  wrapperPid: number;
  wrapperStartTime: string;
}

export interface ExitFile {
  exitCode: number | null;
  signal: string | null;
  error?: string;
}

export interface RankRecord {
  job: string;
  attempt: number;
  rank: number;
  localRank: number;
  device: number;
  stage: number;
  pid?: PidFile;
  stopRequested: boolean;
  startedReported: boolean;
  exited?: { exitCode?: number; signal?: string; failureClass: RankExitedReport['failureClass'] };
  offsets: Record<Stream, { offset: number; gen: number }>;
}

export interface RunnerOptions {
  stateDir: string;
  node: string;
  runtimes: RuntimeTable;
  gpus: boolean;
  /** Receives every report the runner produces (the agent appends it to the outbox). */
  emit: (job: string, attempt: number, id: string, body: ReportBody) => void;
  log: (msg: string) => void;
  logCapBytes?: number;
  python?: string;
  baseEnv?: NodeJS.ProcessEnv;
}

interface Active {
  dir: string;
  rec: RankRecord;
  stderrTail: string;
}

const MAX_READ = 1 << 20;
const MAX_LINE = 4000;
const LOG_LINES_PER_REPORT = 500;

export class Runner {
  private readonly active = new Map<string, Active>();
  private readonly done = new Map<string, RankRecord>();
  invalidProfileLines = 0;

  constructor(private readonly o: RunnerOptions) {}

  jobDir(job: string, attempt: number): string {
    return join(this.o.stateDir, 'jobs', safeToken(job), String(attempt));
  }

  private key(job: string, attempt: number, rank: number): string {
    return `${job}\u0000${attempt}\u0000${rank}`;
  }

  private save(a: Active): void {
    writeJsonDurable(join(a.dir, 'rank.json'), a.rec);
  }

  get runningRanks(): number {
    return this.active.size;
  }

  runningJobs(): string[] {
    return [...new Set([...this.active.values()].map((a) => a.rec.job))];
  }

  /**
   * Deletes the directories (record, logs) of ranks that exited before `cutoffMs` (by the record's last write,
   * which is its exit), then attempt and job directories left without ranks. Only ranks whose exit report has
   * already gone to the outbox are touched; running ranks and their attempts never are. Returns the ranks removed.
   */
  prune(cutoffMs: number): number {
    let removed = 0;
    const attempts = new Set<string>();
    for (const [k, rec] of this.done) {
      const dir = join(this.jobDir(rec.job, rec.attempt), `rank-${rec.rank}`);
      let mtimeMs: number;
      try {
        mtimeMs = statSync(join(dir, 'rank.json')).mtimeMs;
      } catch {
        mtimeMs = -Infinity; // the record is gone already: forget it
      }
      if (mtimeMs >= cutoffMs) continue;
      rmSync(dir, { recursive: true, force: true });
      this.done.delete(k);
      attempts.add(this.jobDir(rec.job, rec.attempt));
      removed++;
    }
    for (const attDir of attempts) {
      if (!existsSync(attDir) || readdirSync(attDir).some((e) => e.startsWith('rank-'))) continue;
      rmSync(attDir, { recursive: true, force: true });
      const jobDir = dirname(attDir);
      if (existsSync(jobDir) && readdirSync(jobDir).length === 0) rmSync(jobDir, { recursive: true, force: true });
    }
    return removed;
  }

  /** Finds ranks recorded by a previous agent process: adopts live ones, reports the ones that ended or vanished. */
  recover(): { adopted: number; ended: number; lost: number } {
    const stats = { adopted: 0, ended: 0, lost: 0 };
    const jobsRoot = join(this.o.stateDir, 'jobs');
    if (!existsSync(jobsRoot)) return stats;
    for (const jobTok of readdirSync(jobsRoot)) {
      for (const att of readdirSync(join(jobsRoot, jobTok))) {
        const attDir = join(jobsRoot, jobTok, att);
        for (const r of readdirSync(attDir)) {
          if (!r.startsWith('rank-')) continue;
          const dir = join(attDir, r);
          const rec = readJson<RankRecord>(join(dir, 'rank.json'));
          if (!rec) continue;
          const k = this.key(rec.job, rec.attempt, rec.rank);
          if (rec.exited) {
            this.done.set(k, rec);
            continue;
          }
          if (!rec.pid) rec.pid = readJson<PidFile>(join(dir, 'pid.json'));
          const a: Active = { dir, rec, stderrTail: '' };
          this.active.set(k, a);
          const exit = readJson<ExitFile>(join(dir, 'exit.json'));
          const alive = rec.pid && (isAlive(rec.pid.wrapperPid, rec.pid.wrapperStartTime) || isAlive(rec.pid.pid, rec.pid.startTime));
          if (exit || !alive) {
            stats[exit ? 'ended' : 'lost']++;
          } else {
            stats.adopted++;
            this.o.emit('', 0, `${this.o.node}/adopt/${rec.job}/${rec.attempt}/${rec.rank}/${rec.pid!.startTime}`, {
              kind: 'nodeEvent',
              event: 'rank_adopted',
              message: `rank ${rec.rank} of ${rec.job} attempt ${rec.attempt} (pid ${rec.pid!.pid}) adopted after agent restart`,
            });
          }
          this.save(a);
        }
      }
    }
    return stats;
  }

  /** Starts the ranks of a Launch on this node (idempotent per (job, attempt, rank)); resolves with their pids. */
  async launch(cmd: LaunchCommand): Promise<RankPid[]> {
    const runtime = this.o.runtimes[cmd.runtime];
    if (!runtime) {
      throw new MistError('BAD_INPUT', `launch.runtime: unknown runtime ${JSON.stringify(cmd.runtime)}; this agent offers: ${Object.keys(this.o.runtimes).join(', ') || '(none)'}`);
    }
    checkJobEnv(cmd.env);
    if (cmd.ranks.length === 0) throw new MistError('BAD_INPUT', 'launch.ranks: no ranks placed on this node');
    if (!Number.isInteger(cmd.masterPort) || cmd.masterPort < 1 || cmd.masterPort > 65535) throw new MistError('BAD_INPUT', `launch.masterPort: ${cmd.masterPort} is not a port`);
    for (const r of cmd.ranks) {
      if (!Number.isInteger(r.rank) || r.rank < 0 || r.rank >= cmd.worldSize) throw new MistError('BAD_INPUT', `launch.ranks: rank ${r.rank} outside world size ${cmd.worldSize}`);
    }
    const attDir = this.jobDir(cmd.job, cmd.attempt);
    if (existsSync(join(attDir, 'stopped'))) {
      throw new MistError('CONFLICT', `job ${cmd.job} attempt ${cmd.attempt} was stopped on this node; launch a new attempt`, { retryable: false });
    }
    const planFile = join(attDir, 'plan.json');
    if (!existsSync(planFile)) writeFileDurable(planFile, cmd.planJson);
    const waits: Array<Promise<RankPid>> = [];
    for (const p of cmd.ranks) {
      const k = this.key(cmd.job, cmd.attempt, p.rank);
      const existing = this.active.get(k)?.rec ?? this.done.get(k);
      if (existing?.pid) {
        waits.push(Promise.resolve({ rank: p.rank, pid: existing.pid.pid }));
        continue;
      }
      const dir = join(attDir, `rank-${p.rank}`);
      mkdirSync(dir, { recursive: true });
      const values = {
        python: process.env.MIST_PYTHON ?? this.o.python ?? '/usr/bin/python3',
        node: process.execPath,
        planFile,
        stateDir: this.o.stateDir,
        rankDir: dir,
        job: cmd.job,
        attempt: String(cmd.attempt),
        rank: String(p.rank),
        localRank: String(p.localRank),
        node_name: this.o.node,
      };
      const { argv, cwd } = expandArgv(runtime, values);
      const fixed: Record<string, string> = {
        RANK: String(p.rank),
        WORLD_SIZE: String(cmd.worldSize),
        LOCAL_RANK: String(p.localRank),
        LOCAL_WORLD_SIZE: String(cmd.ranks.length),
        MASTER_ADDR: cmd.masterAddr,
        MASTER_PORT: String(cmd.masterPort),
        MIST_PLAN_FILE: planFile,
        MIST_STATE_DIR: this.o.stateDir,
        MIST_RANK_DIR: dir,
        MIST_JOB: cmd.job,
        MIST_ATTEMPT: String(cmd.attempt),
        MIST_NODE: this.o.node,
        MIST_STAGE: String(p.stage),
        MIST_DEVICE: String(p.device),
      };
      if (this.o.gpus) fixed.CUDA_VISIBLE_DEVICES = String(p.device);
      const rec: RankRecord = {
        job: cmd.job,
        attempt: cmd.attempt,
        rank: p.rank,
        localRank: p.localRank,
        device: p.device,
        stage: p.stage,
        stopRequested: false,
        startedReported: false,
        offsets: { stdout: { offset: 0, gen: 0 }, stderr: { offset: 0, gen: 0 } },
      };
      const a: Active = { dir, rec, stderrTail: '' };
      writeJsonDurable(join(dir, 'launch.json'), { argv, cwd: cwd ?? dir });
      this.save(a);
      this.active.set(k, a);
      const child = spawn(process.execPath, [WRAPPER, dir], {
        detached: true,
        stdio: 'ignore',
        env: rankEnv(this.o.baseEnv ?? process.env, cmd.env, fixed),
      });
      child.on('error', (e) => this.o.log(`rank ${p.rank}: wrapper failed to start: ${e.message}`));
      child.unref();
      waits.push(this.waitForPid(a).then((pid) => ({ rank: p.rank, pid })));
    }
    return Promise.all(waits);
  }

  private async waitForPid(a: Active): Promise<number> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const pid = readJson<PidFile>(join(a.dir, 'pid.json'));
      if (pid) {
        a.rec.pid = pid;
        this.reportStarted(a);
        return pid.pid;
      }
      if (existsSync(join(a.dir, 'exit.json'))) {
        const exit = readJson<ExitFile>(join(a.dir, 'exit.json'));
        throw new MistError('INTERNAL', `rank ${a.rec.rank} did not start: ${exit?.error ?? 'wrapper exited'}`);
      }
      if (Date.now() > deadline) throw new MistError('TIMEOUT', `rank ${a.rec.rank}: the wrapper did not report a pid within 15 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private reportStarted(a: Active): void {
    if (a.rec.startedReported || !a.rec.pid) return;
    const r = a.rec;
    this.o.emit(r.job, r.attempt, `${this.o.node}/${r.job}/${r.attempt}/r${r.rank}/started`, { kind: 'rankStarted', rank: r.rank, pid: r.pid!.pid });
    r.startedReported = true;
    this.save(a);
  }

  /** One supervision pass: tail output, notice exits. Called periodically by the agent. */
  tick(): void {
    for (const [k, a] of this.active) {
      if (!a.rec.pid) {
        const pid = readJson<PidFile>(join(a.dir, 'pid.json'));
        if (pid) a.rec.pid = pid;
      }
      this.reportStarted(a);
      for (const s of STREAMS) this.tail(a, s);
      const exit = readJson<ExitFile>(join(a.dir, 'exit.json'));
      if (exit) {
        for (const s of STREAMS) this.tail(a, s);
        this.finish(k, a, exit, false);
        continue;
      }
      const p = a.rec.pid;
      const wrapperAlive = p ? isAlive(p.wrapperPid, p.wrapperStartTime) : existsSync(join(a.dir, 'launch.json'));
      if (!wrapperAlive) {
        // The wrapper is gone without an exit file: re-read (it may have just been written), then decide.
        const again = readJson<ExitFile>(join(a.dir, 'exit.json'));
        if (again) {
          this.finish(k, a, again, false);
        } else if (p && isAlive(p.pid, p.startTime)) {
          continue; // the rank outlived its wrapper: keep watching it by pid
        } else {
          for (const s of STREAMS) this.tail(a, s);
          this.finish(k, a, { exitCode: null, signal: a.rec.stopRequested ? 'SIGKILL' : null }, !a.rec.stopRequested);
        }
      }
    }
  }

  private finish(k: string, a: Active, exit: ExitFile, lost: boolean): void {
    const r = a.rec;
    const failureClass = lost
      ? 'node_lost'
      : classifyExit({ exitCode: exit.exitCode, signal: exit.signal, stoppedByAgent: r.stopRequested, stderrTail: a.stderrTail });
    const body: RankExitedReport = { kind: 'rankExited', rank: r.rank, failureClass };
    if (exit.exitCode !== null && exit.exitCode !== undefined) body.exitCode = exit.exitCode;
    if (exit.signal) body.signal = exit.signal;
    this.o.emit(r.job, r.attempt, `${this.o.node}/${r.job}/${r.attempt}/r${r.rank}/exited`, body);
    r.exited = { failureClass, ...(body.exitCode !== undefined ? { exitCode: body.exitCode } : {}), ...(body.signal ? { signal: body.signal } : {}) };
    this.save(a);
    this.active.delete(k);
    this.done.set(k, r);
  }

  private tail(a: Active, stream: Stream): void {
    const path = join(a.dir, `${stream}.log`);
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return;
    }
    const pos = a.rec.offsets[stream];
    if (size < pos.offset) {
      pos.offset = 0; // truncated by someone else
      pos.gen++;
    }
    let changed = false;
    while (size > pos.offset) {
      const len = Math.min(size - pos.offset, MAX_READ);
      const buf = Buffer.alloc(len);
      const fd = openSync(path, 'r');
      let n: number;
      try {
        n = readSync(fd, buf, 0, len, pos.offset);
      } finally {
        closeSync(fd);
      }
      let text = buf.subarray(0, n).toString('utf8');
      let consumed = n;
      const lastNl = text.lastIndexOf('\n');
      if (lastNl < 0) {
        if (n < MAX_READ) break; // wait for the rest of the line
        text += '\n'; // an over-long line without newline: take it as is
      } else {
        consumed = Buffer.byteLength(text.slice(0, lastNl + 1));
        text = text.slice(0, lastNl + 1);
      }
      this.consume(a, stream, text, pos.offset, pos.gen);
      pos.offset += consumed;
      changed = true;
      if (n < len) break;
    }
    const cap = this.o.logCapBytes ?? 64 * 1024 * 1024;
    if (pos.offset >= cap && size >= cap) {
      // Everything up to here is consumed: truncate in place (the rank appends with O_APPEND) and leave a marker.
      truncateSync(path, 0);
      appendFileSync(path, `[mist] ${stream} truncated after ${pos.offset} bytes (cap ${cap})\n`);
      pos.offset = 0;
      pos.gen++;
      changed = true;
    }
    if (changed) this.save(a);
  }

  private consume(a: Active, stream: Stream, text: string, offset: number, gen: number): void {
    const r = a.rec;
    const lines = text.split('\n');
    lines.pop();
    const logLines: string[] = [];
    for (const line of lines) {
      const prof = parseProfileLine(line, r.rank, r.stage);
      if (prof && prof !== 'invalid') {
        this.o.emit(r.job, r.attempt, `${this.o.node}/${r.job}/${r.attempt}/r${r.rank}/step/${prof.step}`, prof);
        continue;
      }
      if (prof === 'invalid') this.invalidProfileLines++;
      logLines.push(line.length > MAX_LINE ? line.slice(0, MAX_LINE) + '…' : line);
    }
    if (stream === 'stderr') a.stderrTail = (a.stderrTail + text).slice(-65536);
    for (let i = 0; i < logLines.length; i += LOG_LINES_PER_REPORT) {
      const chunk = logLines.slice(i, i + LOG_LINES_PER_REPORT);
      this.o.emit(r.job, r.attempt, `${this.o.node}/${r.job}/${r.attempt}/r${r.rank}/log/${stream}/${gen}/${offset}/${i}`, {
        kind: 'logTail',
        rank: r.rank,
        stream,
        lines: chunk,
        truncated: false,
      });
    }
  }

  /** Stops the ranks of `job` (attempt 0: every attempt): SIGTERM to each rank's group, SIGKILL after the grace. */
  async stop(job: string, attempt: number, graceSeconds: number): Promise<number[]> {
    const targets = [...this.active.values()].filter((a) => a.rec.job === job && (attempt === 0 || a.rec.attempt === attempt));
    const attempts = attempt === 0 ? [...new Set(targets.map((a) => a.rec.attempt))] : [attempt];
    for (const att of attempts) {
      const dir = this.jobDir(job, att);
      mkdirSync(dir, { recursive: true });
      writeFileDurable(join(dir, 'stopped'), `${Date.now()}\n`);
    }
    const stopped: number[] = [];
    for (const a of targets) {
      a.rec.stopRequested = true;
      this.save(a);
      if (a.rec.pid && signalGroup(a.rec.pid.pgid, 'SIGTERM')) stopped.push(a.rec.rank);
    }
    const groups = targets.filter((a) => a.rec.pid).map((a) => a.rec.pid!.pgid);
    const graceEnd = Date.now() + Math.max(0, graceSeconds) * 1000;
    while (groups.some(groupAlive) && Date.now() < graceEnd) await new Promise((r) => setTimeout(r, 50));
    for (const g of groups) if (groupAlive(g)) signalGroup(g, 'SIGKILL');
    const killEnd = Date.now() + 10_000;
    while (groups.some(groupAlive) && Date.now() < killEnd) await new Promise((r) => setTimeout(r, 20));
    return stopped.sort((x, y) => x - y);
  }

  /** Signals every running rank (agent shutdown with --stop-ranks). */
  async stopAll(graceSeconds: number): Promise<void> {
    const jobs = new Set([...this.active.values()].map((a) => a.rec.job));
    for (const j of jobs) await this.stop(j, 0, graceSeconds);
  }

  status(job?: string): RankStatus[] {
    const out: RankStatus[] = [];
    const push = (rec: RankRecord, running: boolean) => {
      if (job !== undefined && rec.job !== job) return;
      const s: RankStatus = {
        job: rec.job,
        attempt: rec.attempt,
        rank: rec.rank,
        pid: rec.pid?.pid ?? 0,
        state: running ? (rec.stopRequested ? 'stopping' : rec.pid ? 'running' : 'starting') : 'exited',
      };
      if (rec.exited) s.exit = { failureClass: rec.exited.failureClass, ...(rec.exited.exitCode !== undefined ? { exitCode: rec.exited.exitCode } : {}), ...(rec.exited.signal ? { signal: rec.exited.signal } : {}) };
      out.push(s);
    };
    for (const a of this.active.values()) push(a.rec, true);
    for (const r of this.done.values()) push(r, false);
    return out.sort((x, y) => (x.job < y.job ? -1 : x.job > y.job ? 1 : x.attempt - y.attempt || x.rank - y.rank));
  }
}
