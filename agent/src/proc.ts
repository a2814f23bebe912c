/**
 * Process identity from /proc. A pid alone is not an identity (pids are reused), so every process the agent
 * tracks is recorded as (pid, start time in clock ticks since boot, from /proc/<pid>/stat field 22).
 */
import { readFileSync } from 'node:fs';

interface ProcStat {
  state: string;
  pgid: number;
  startTime: string;
}

function readStat(pid: number): ProcStat | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ..." — comm may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field 5 is pgrp -> rest[2]; field 22 is starttime -> rest[19].
  if (rest.length < 20) return undefined;
  return { state: rest[0]!, pgid: Number(rest[2]), startTime: rest[19]! };
}

/** Start time of `pid` (clock ticks since boot, as a string), or undefined when no such process. */
export function procStartTime(pid: number): string | undefined {
  return readStat(pid)?.startTime;
}

/** True when `pid` runs, is not a zombie, and (when given) started at `startTime`. */
export function isAlive(pid: number, startTime?: string): boolean {
  const st = readStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return startTime === undefined || st.startTime === startTime;
}

/** True while any process of group `pgid` exists (kill(-pgid, 0) succeeds). */
export function groupAlive(pgid: number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends `signal` to every process of group `pgid`; false when the group is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
