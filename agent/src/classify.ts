/**
 * Failure classification of a rank exit (DESIGN.md §2 failure classes), from the exit code or signal, whether the
 * agent itself stopped the rank, and the tail of its stderr:
 *
 *   exit 0                                   -> success (failureClass "unknown" is sent and means nothing)
 *   stopped by the agent (Stop command) and ended by a signal or by exit 128+n / 143 / 137 -> killed
 *   OOM marker in stderr (CUDA out of memory, OutOfMemoryError, MemoryError, std::bad_alloc, Cannot allocate
 *     memory)                               -> out_of_memory   (checked before the rules below)
 *   SIGKILL not sent by the agent (kernel OOM killer, admin) -> killed
 *   infra marker in stderr (NCCL error, ncclSystemError/ncclInternalError, Xid, ECC error, CUDA driver errors,
 *     "device-side assert" excluded)        -> infra_error
 *   SIGSEGV, SIGBUS, SIGILL, SIGABRT        -> infra_error
 *   other signals (SIGTERM, SIGINT, ...) not from the agent -> killed
 *   exit 126, 127 (runtime not executable / not found: the admin's runtime list) -> infra_error
 *   exit 1–125 and 128+n codes with no matching rule -> user_error
 *   anything else                            -> unknown
 */
import type { FailureClass } from '../../protocol/src/failure.js';

export interface ExitFacts {
  exitCode: number | null;
  signal: string | null;
  stoppedByAgent: boolean;
  /** The last bytes of the rank's stderr. */
  stderrTail: string;
}

const OOM = /CUDA out of memory|OutOfMemoryError|\bMemoryError\b|std::bad_alloc|Cannot allocate memory|out of memory/i;
const INFRA = /NCCL error|ncclSystemError|ncclInternalError|ncclRemoteError|\bXid\b|uncorrectable ECC|CUDA driver version is insufficient|no CUDA-capable device|unhandled cuda error/i;
const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGABRT']);
const SIGNAL_BY_NUMBER: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 9: 'SIGKILL', 11: 'SIGSEGV', 15: 'SIGTERM' };

export function classifyExit(f: ExitFacts): FailureClass {
  if (f.exitCode === 0 && !f.signal) return 'unknown';
  // A shell or launcher reports a child killed by signal n as exit 128+n.
  const signal = f.signal ?? (f.exitCode !== null && f.exitCode > 128 && f.exitCode < 160 ? SIGNAL_BY_NUMBER[f.exitCode - 128] ?? null : null);
  if (f.stoppedByAgent && (signal !== null || f.exitCode === null)) return 'killed';
  if (OOM.test(f.stderrTail)) return 'out_of_memory';
  if (signal === 'SIGKILL') return 'killed';
  if (INFRA.test(f.stderrTail)) return 'infra_error';
  if (signal && CRASH_SIGNALS.has(signal)) return 'infra_error';
  if (signal) return 'killed';
  if (f.exitCode === 126 || f.exitCode === 127) return 'infra_error';
  if (f.exitCode !== null && f.exitCode >= 1 && f.exitCode <= 255) return f.stoppedByAgent ? 'killed' : 'user_error';
  return 'unknown';
}
