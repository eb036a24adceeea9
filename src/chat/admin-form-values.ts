import { parse } from 'yaml';
import { DURATION_HINT, parseDuration } from '../elevation/duration.ts';
import { DURATION_SETTINGS } from '../elevation/role-settings.ts';
import { invalid } from '../errors.ts';

/** Values typed into the admin role form, shared by every chat platform. */

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
