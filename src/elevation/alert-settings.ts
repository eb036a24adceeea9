import { z } from 'zod';
import { DAY } from './role-settings.ts';

/**
 * The alert thresholds (policy file `alerts:`), PIM-like defaults. Durations are whole minutes,
 * written as `24h`, `30d` in the file. Every alert can be switched off with `enabled: false`.
 */
const enabled = z.boolean().default(true);
const minutes = z.number().int().positive();

export const alertSettingsSchema = z.strictObject({
  /** `activations` or more activations of one role by one principal within `within` (PIM: 2–100). */
  frequentActivation: z
    .strictObject({
      enabled,
      activations: z.number().int().min(2).max(100).default(5),
      within: minutes.default(DAY),
    })
    .prefault({}),
  /** A role marked `sensitive` that activates without approval and without MFA. */
  sensitiveRoleUnprotected: z.strictObject({ enabled }).prefault({}),
  /** An eligibility not activated for `after` (counted from its start or the last activation). */
  staleEligibility: z.strictObject({ enabled, after: minutes.max(365 * DAY).default(30 * DAY) }).prefault({}),
  /** More than `holders` principals holding one role at once. */
  tooManyActive: z.strictObject({ enabled, holders: z.number().int().min(1).default(3) }).prefault({}),
  /** More than `assignments` permanent (no end) active assignments of one role. */
  permanentActive: z.strictObject({ enabled, assignments: z.number().int().min(0).default(0) }).prefault({}),
  /** A holder in the target with no activation behind it (from reconciliation). */
  unmanagedGrant: z.strictObject({ enabled }).prefault({}),
  /** A revoke that failed `attempts` times in a row and is still retried. */
  revokeFailing: z
    .strictObject({ enabled, attempts: z.number().int().min(1).max(100).default(3) })
    .prefault({}),
});

/** The complete, checked thresholds. */
export type AlertSettings = z.output<typeof alertSettingsSchema>;
/** What a file may write: any subset. */
export type AlertSettingsInput = z.input<typeof alertSettingsSchema>;

/** The threshold keys written as durations (`24h`, `30d`), per alert. */
export const ALERT_DURATIONS: ReadonlySet<string> = new Set(['within', 'after']);

/** The defaults. */
export const defaultAlertSettings = (): AlertSettings => alertSettingsSchema.parse({});
