/**
 * Failure classes (DESIGN.md §2): the one enum every component uses to say why a rank or a job attempt failed.
 * The wire form is the proto enum mist.v1.FailureClass; the codec maps it to these strings.
 */

export const FAILURE_CLASSES = [
  'user_error',
  'out_of_memory',
  'node_lost',
  'infra_error',
  'killed',
  'hung',
  'unknown',
] as const;

export type FailureClass = (typeof FAILURE_CLASSES)[number];

const FAILURE_CLASS_SET: ReadonlySet<string> = new Set(FAILURE_CLASSES);

export function isFailureClass(value: unknown): value is FailureClass {
  return typeof value === 'string' && FAILURE_CLASS_SET.has(value);
}
