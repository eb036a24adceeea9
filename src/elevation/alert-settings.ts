import { z } from 'zod';
import { DAY } from './role-settings.ts';

/**
 * The alert thresholds (policy file `alerts:`), PIM-like defaults. Durations are whole minutes,
 * written as `24h`, `30d` in the file. Every alert can be switched off with `enabled: false`.
 */
const enabled = z.boolean().default(true);
const minutes = z.number().int().positive();

/** A Slack channel id (public `C…`, private `G…`); the name would break on a rename. */
const SLACK_CHANNEL = /^[CG][A-Z0-9]{6,}$/;
/** A Teams channel or group chat id, without the `;messageid=…` of a thread. */
const TEAMS_CONVERSATION = /^19:[^\s;]+@thread\.[a-z0-9]+$/i;

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
  /**
   * Where raised alerts are posted once, for every admin to see, instead of a DM per admin: a
   * Slack channel and/or a Teams channel or group chat. A platform without one DMs the admins.
   */
  channel: z
    .strictObject({
      slack: z
        .string()
        .trim()
        .regex(SLACK_CHANNEL, {
          error: (issue) =>
            `${JSON.stringify(issue.input)} is not a Slack channel id: write the id (C0123ABCD, at the bottom of the channel's details), not the name`,
        })
        .optional(),
      teams: z
        .string()
        .trim()
        .regex(TEAMS_CONVERSATION, {
          error: (issue) =>
            `${JSON.stringify(issue.input)} is not a Teams channel or group chat id: write 19:…@thread.tacv2 (from the channel's "Get link", decoded, without ;messageid=)`,
        })
        .optional(),
    })
    .prefault({}),
});

/** The complete, checked thresholds. */
export type AlertSettings = z.output<typeof alertSettingsSchema>;
/** What a file may write: any subset. */
export type AlertSettingsInput = z.input<typeof alertSettingsSchema>;

/** The keys of `channel`, one per chat platform. */
export const ALERT_CHANNEL_KEYS = ['slack', 'teams'] as const;

/** The threshold keys written as durations (`24h`, `30d`), per alert. */
export const ALERT_DURATIONS: ReadonlySet<string> = new Set(['within', 'after']);

/** The defaults. */
export const defaultAlertSettings = (): AlertSettings => alertSettingsSchema.parse({});
