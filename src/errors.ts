/**
 * Domain errors: a stable code and a message fit to show the person who caused it.
 * No HTTP status and no chat type lives here; each surface maps codes to its own answer once.
 */
export type ErrorCode =
  | 'invalid' // the input breaks a rule; the message says which and how to fix it
  | 'not_found' // the named thing does not exist (or is archived)
  | 'forbidden' // this actor may not do this
  | 'conflict' // the state moved on (already decided, already open, not active any more)
  | 'unavailable' // a dependency (database, provider) failed; safe to retry
  | 'step_up_needed'; // nothing happened yet: the person must verify their identity first (StepUpNeeded)

/** An error whose message can be shown to a person as it is. */
export class ElevateError extends Error {
  readonly code: ErrorCode;
  /** Which input field the problem is about, so forms can show it inline. */
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'ElevateError';
    this.code = code;
    this.field = field;
  }
}

/** Shorthands that read like the rule they enforce. */
export const invalid = (message: string, field?: string) => new ElevateError('invalid', message, field);
export const notFound = (message: string) => new ElevateError('not_found', message);
export const forbidden = (message: string) => new ElevateError('forbidden', message);
export const conflict = (message: string) => new ElevateError('conflict', message);
