/** How the CLI prints: one JSON document on stdout with --json; progress and errors on stderr. */
import { isMistError } from '../../../protocol/src/errors.js';

export function printJson(doc: unknown): void {
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
}

/** Writes progress to stderr so that stdout stays one JSON document. */
export function progress(message: string): void {
  process.stderr.write(message + '\n');
}

/** Prints an error without a stack trace (unless MIST_DEBUG is set) and returns the exit code it maps to. */
export function reportError(e: unknown, json: boolean): number {
  if (isMistError(e)) {
    if (json) printJson({ error: e.toJSON() });
    process.stderr.write(`mist: ${e.message}\n`);
    if (process.env.MIST_DEBUG && e.stack) process.stderr.write(e.stack + '\n');
    return e.exitCode;
  }
  const message = e instanceof Error ? e.message : String(e);
  if (json) printJson({ error: { code: 'INTERNAL', message, retryable: false } });
  process.stderr.write(`mist: internal error: ${message}\n`);
  if (e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
  return 1;
}
