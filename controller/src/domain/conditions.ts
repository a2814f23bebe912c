/**
 * Status conditions and events (Kubernetes conventions, research/ecosystem.md §2.1): a condition is
 * `{type, status True|False|Unknown, reason (CamelCase, non-empty), message, lastTransitionTime, observedGeneration}`;
 * conditions describe the current state (one per type, a map keyed by type), and lastTransitionTime changes only
 * when the status flips. Events are the history: one per transition, Normal or Warning.
 */

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** The condition types of a MistJob, in display order. */
export const CONDITION_TYPES = ['Planned', 'Scheduled', 'Running', 'Restarting', 'Suspended', 'Succeeded', 'Failed'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  /** CamelCase, non-empty. */
  reason: string;
  message: string;
  /** RFC 3339 (UTC, millisecond precision); changes only when `status` flips. */
  lastTransitionTime: string;
  observedGeneration: number;
}

export interface ConditionUpdate {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  /** Only update the condition when it is already present (e.g. Running=False before the job ever ran is noise). */
  onlyIfPresent?: boolean;
}

export interface JobEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** RFC 3339. */
  time: string;
}

const REASON = /^[A-Z][A-Za-z0-9]*$/;

export function isValidReason(reason: string): boolean {
  return REASON.test(reason);
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/**
 * Milliseconds since the Unix epoch → RFC 3339 UTC (`2026-01-02T03:04:05.678Z`), computed without a Date object
 * (civil-from-days, H. Hinnant) so this stays a pure helper for the pure modules.
 */
export function isoTime(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`isoTime: not a time: ${ms}`);
  const t = Math.floor(ms);
  const days = Math.floor(t / 86_400_000);
  let rem = t - days * 86_400_000;
  const hh = Math.floor(rem / 3_600_000);
  rem -= hh * 3_600_000;
  const mi = Math.floor(rem / 60_000);
  rem -= mi * 60_000;
  const ss = Math.floor(rem / 1000);
  const mss = rem - ss * 1000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const year = y < 0 ? `-${pad(-y, 6)}` : y > 9999 ? `+${pad(y, 6)}` : pad(y, 4);
  return `${year}-${pad(m)}-${pad(d)}T${pad(hh)}:${pad(mi)}:${pad(ss)}.${pad(mss, 3)}Z`;
}

export function getCondition(conditions: readonly Condition[], type: ConditionType): Condition | undefined {
  return conditions.find((c) => c.type === type);
}

/**
 * Returns the conditions with `update` applied (a new array; the input is not modified). lastTransitionTime is
 * `now` for a new condition or a status flip and kept otherwise; reason, message and observedGeneration follow the
 * update. The result is ordered by CONDITION_TYPES.
 */
export function setCondition(conditions: readonly Condition[], update: ConditionUpdate, now: number, generation: number): Condition[] {
  if (!isValidReason(update.reason)) throw new RangeError(`condition ${update.type}: reason ${JSON.stringify(update.reason)} is not CamelCase`);
  const prev = getCondition(conditions, update.type);
  if (!prev && update.onlyIfPresent) return [...conditions];
  const next: Condition = {
    type: update.type,
    status: update.status,
    reason: update.reason,
    message: update.message,
    lastTransitionTime: prev && prev.status === update.status ? prev.lastTransitionTime : isoTime(now),
    observedGeneration: generation,
  };
  const out = conditions.filter((c) => c.type !== update.type);
  out.push(next);
  return out.sort((a, b) => CONDITION_TYPES.indexOf(a.type) - CONDITION_TYPES.indexOf(b.type));
}
