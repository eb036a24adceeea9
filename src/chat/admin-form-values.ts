import { parse } from 'yaml';
import { DURATION_HINT, parseDuration } from '../elevation/duration.ts';
import { RECURRENCES, REVIEW_DECISIONS, REVIEWER_MODES } from '../elevation/review.sql.ts';
import type { ReviewInput } from '../elevation/review-service.ts';
import { DURATION_SETTINGS } from '../elevation/role-settings.ts';
import { invalid } from '../errors.ts';

/** Values typed into the admin forms (role, access review), shared by every chat platform. */

/** YAML typed into a form field; a syntax error names the field. */
export function parseYaml(text: string | undefined, what: string): unknown {
  try {
    return parse(text ?? '') ?? {};
  } catch (error) {
    throw invalid(`The ${what} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
}

/** The one duration setting that may be zero, as in the policy file (the form shows it as `0m`). */
const ZERO_ALLOWED = 'minActiveBeforeDeactivation';
const ZERO = /^(?:0+(?:m|min|h|d)?|PT?0+[MHD])$/i;

/** Settings as written in the dialog (policy-file style): durations like `8h` become minutes. */
export function parseSettings(text: string | undefined): Record<string, unknown> {
  const raw = parseYaml(text, 'settings');
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalid('The settings are one `name: value` a line.');
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (DURATION_SETTINGS.has(key) && typeof value === 'string') {
      const minutes = key === ZERO_ALLOWED && ZERO.test(value.trim()) ? 0 : parseDuration(value);
      if (minutes === undefined) throw invalid(`${key}: "${value}" is not a duration (${DURATION_HINT})`);
      out[key] = minutes;
    } else out[key] = value;
  }
  return out;
}

/** One of `allowed`, or a problem on `field` (a select's value only differs when forged). */
function oneOf<const T extends readonly string[]>(value: string, allowed: T, field: string): T[number] {
  if (!allowed.includes(value)) throw invalid(`"${value}" is not one of ${allowed.join(', ')}.`, field);
  return value as T[number];
}

/**
 * The start-a-review form (admin-messages.ts reviewStartForm) as the review service takes it;
 * `reviewerEmails` are the named reviewers, found by each surface its own way (Slack: the user
 * picker; Teams: typed emails). The service checks the rest (roles exist, named reviewers given).
 */
export function reviewInput(
  values: Partial<Record<'role' | 'reviewerMode' | 'duration' | 'recurrence' | 'unreviewed', string>>,
  reviewerEmails: string[],
): ReviewInput {
  const duration = (values.duration ?? '').trim();
  const durationMinutes = duration ? parseDuration(duration) : undefined;
  if (duration && durationMinutes === undefined)
    throw invalid(`"${duration}" is not a duration (${DURATION_HINT}).`, 'duration');
  const recurrence = values.recurrence || 'none';
  return {
    roleNames: (values.role ?? '')
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean),
    reviewers: oneOf(values.reviewerMode || 'approvers', REVIEWER_MODES, 'reviewerMode'),
    reviewerEmails,
    durationMinutes,
    recurrence: recurrence === 'none' ? null : oneOf(recurrence, RECURRENCES, 'recurrence'),
    unreviewed: oneOf(values.unreviewed || 'keep', REVIEW_DECISIONS, 'unreviewed'),
  };
}
