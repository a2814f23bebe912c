/** Durable file helpers: atomic replace (write, fsync, rename, fsync dir) and JSON reads that tolerate absence. */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Replaces `path` atomically and durably with `data` (mode 0600 by default). */
export function writeFileDurable(path: string, data: string | Uint8Array, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

export function writeJsonDurable(path: string, value: unknown): void {
  writeFileDurable(path, JSON.stringify(value) + '\n');
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* some file systems refuse fsync on directories; the rename is still atomic */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Parsed JSON of `path`, or undefined when it does not exist or is not valid JSON (e.g. a torn write). */
export function readJson<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Deletes the plain files of `dir` last written before `cutoffMs`; returns how many. A missing dir is empty. */
export function removeFilesOlderThan(dir: string, cutoffMs: number): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const path = join(dir, name);
    try {
      const st = statSync(path);
      if (!st.isFile() || st.mtimeMs >= cutoffMs) continue;
      rmSync(path, { force: true });
      removed++;
    } catch {
      /* removed concurrently */
    }
  }
  return removed;
}
