/**
 * The controller's fencing epoch: a monotonic number taken from durable state at start. For now a small JSON file
 * ({"epoch": n}); a later issue bumps it when leadership is won. `acquire()` reads n, durably writes n + 1 and
 * returns n + 1, so every controller start fences off commands from older incarnations.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { MistError } from '../../../protocol/src/errors.js';

export interface EpochStore {
  /** Durably increments and returns the new epoch (≥ 1). */
  acquire(): Promise<number>;
  /** The current epoch without changing it (0 when never acquired). */
  current(): Promise<number>;
}

export class FileEpochStore implements EpochStore {
  constructor(private readonly path: string) {}

  async current(): Promise<number> {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    const n = (JSON.parse(text) as { epoch?: unknown }).epoch;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new MistError('INTERNAL', `${this.path}: epoch ${String(n)} is not a non-negative integer`);
    return n;
  }

  async acquire(): Promise<number> {
    const next = (await this.current()) + 1;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify({ epoch: next }) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    return next;
  }
}
