/**
 * One error type for the whole system. Every error that crosses a module boundary is a MistError with a
 * stable `code` (documented in docs/errors.md; a test keeps the two in step), a `retryable` flag that tells
 * callers whether the same request may succeed later, and an optional `cause`.
 *
 * Lives in protocol/ because both the controller and the agents raise and inspect these errors, and
 * protocol/ is the one module both may import.
 */

/** Every code, with whether it is retryable and the exit status the CLI maps it to. */
export const ERROR_CODES = {
  BAD_INPUT: { retryable: false, exit: 2, summary: 'A flag, file, spec or message field is invalid; the message names the field and what would be valid.' },
  NOT_IMPLEMENTED: { retryable: false, exit: 2, summary: 'The subcommand or feature exists in the design but is not built yet.' },
  INFEASIBLE: { retryable: false, exit: 3, summary: 'No plan fits the cluster slice (memory or divisibility); the message says by how much.' },
  DECODE_ERROR: { retryable: false, exit: 1, summary: 'A wire message could not be decoded (random bytes, truncated, wrong type).' },
  FRAME_TOO_LARGE: { retryable: false, exit: 1, summary: 'A wire frame is larger than the protocol allows.' },
  UNSUPPORTED_VERSION: { retryable: false, exit: 1, summary: 'A message carries a protocol version this build cannot read.' },
  STALE_EPOCH: { retryable: false, exit: 1, summary: 'A command carries an older controller epoch than the agent has seen; it is refused (fencing).' },
  SETUP_MISSING: { retryable: false, exit: 1, summary: 'A system package or service the command needs is missing; the message gives the command that installs it.' },
  UNAVAILABLE: { retryable: true, exit: 1, summary: 'A dependency (NATS, database, agent) did not answer; retry later.' },
  TIMEOUT: { retryable: true, exit: 1, summary: 'An operation did not finish within its deadline.' },
  CONFLICT: { retryable: true, exit: 1, summary: 'A concurrent update won; re-read and retry.' },
  NOT_FOUND: { retryable: false, exit: 1, summary: 'The named job, plan, node or resource does not exist.' },
  UNAUTHENTICATED: { retryable: false, exit: 1, summary: 'The controller API got no valid token (HTTP 401); pass --token, set MIST_TOKEN, or use the token file under MIST_STATE_DIR.' },
  FORBIDDEN: { retryable: false, exit: 1, summary: 'The token is valid but its role may not do this (HTTP 403): submit and cancel need an admin token.' },
  INTERNAL: { retryable: false, exit: 1, summary: 'A bug: an invariant did not hold. Report it with the message.' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MistError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MistError';
    this.code = code;
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable;
  }

  /** The process exit status the CLI uses for this error (0 ok, 2 bad input, 3 infeasible, 1 other). */
  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }

  toJSON(): { code: ErrorCode; message: string; retryable: boolean } {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}

/** Shorthand for the most common error: bad input naming the field and what would be valid. */
export function badInput(field: string, problem: string, valid?: string): MistError {
  return new MistError('BAD_INPUT', `${field}: ${problem}${valid ? `; ${valid}` : ''}`);
}

export function isMistError(e: unknown): e is MistError {
  return e instanceof MistError;
}
