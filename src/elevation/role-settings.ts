import { z } from 'zod';

/**
 * A role's policy, PIM-aligned (PRODUCT.md, "Role settings"). Durations are whole minutes.
 * Stored as one JSON document on the role; every entry point (policy file, CLI, dialogs)
 * parses through `parseRoleSettings`, so the bounds live here only.
 */
export const DAY = 1440;
/** Upper bound of `maxDuration`: 24 h, or 7 d when the role sets `allowLongActivation`. */
export const MAX_ACTIVATION = DAY;
export const MAX_LONG_ACTIVATION = 7 * DAY;
/** Custom start times may lie at most this far ahead. */
export const MAX_START_AHEAD = 14 * DAY;

const minutes = z.number().int().positive();
const email = z.email().transform((value) => value.toLowerCase());

const settingsShape = z
  .object({
    maxDuration: minutes.default(8 * 60),
    minDuration: minutes.default(30),
    defaultDuration: minutes.optional(),
    allowLongActivation: z.boolean().default(false),
    requireJustification: z.boolean().default(true),
    requireTicket: z.boolean().default(false),
    ticketSystem: z.string().min(1).max(100).optional(),
    ticketPattern: z
      .string()
      .refine((pattern) => isRegex(pattern), { message: 'is not a valid regular expression' })
      .optional(),
    requireApproval: z.boolean().default(false),
    approvers: z.array(email).default([]),
    approvalsRequired: z.number().int().min(1).default(1),
    approvalTimeout: minutes.default(DAY),
    /** Step-up sign-in with the identity provider before a request is submitted. */
    requireMfa: z.boolean().default(false),
    /** The same step-up for an approver before an approve or deny counts. */
    requireMfaToApprove: z.boolean().default(false),
    allowCustomStart: z.boolean().default(true),
    allowPermanentEligibility: z.boolean().default(true),
    maxEligibility: minutes.default(365 * DAY),
    allowPermanentActiveAssignment: z.boolean().default(false),
    maxActiveAssignment: minutes.default(15 * DAY),
    allowExtension: z.boolean().default(true),
    /** A chat channel for approver cards (a Slack channel id), instead of a DM to each approver. */
    approvalChannel: z.string().trim().min(1).max(100).optional(),
    minActiveBeforeDeactivation: z.number().int().min(0).default(5),
    /** Reconciliation revokes a grant it finds in the target with no running activation behind it. */
    revokeUnmanagedGrants: z.boolean().default(false),
    /**
     * Accounts that hold the role in the target on purpose, outside Elevate (a service account, a
     * Slack group's permanent member), as the target names them; reconciliation leaves them be.
     */
    standingHolders: z.array(z.string().trim().min(1).max(200)).default([]),
    /** A sensitive role must not activate without approval and without MFA (else an alert). */
    sensitive: z.boolean().default(false),
  })
  .strict();

/** Settings with every default filled in and every cross-field bound checked. */
export const roleSettingsSchema = settingsShape
  .superRefine((s, ctx) => {
    const ceiling = s.allowLongActivation ? MAX_LONG_ACTIVATION : MAX_ACTIVATION;
    if (s.maxDuration > ceiling) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxDuration'],
        message: s.allowLongActivation
          ? 'may be at most 7d'
          : 'may be at most 24h (set allowLongActivation to allow up to 7d)',
      });
    }
    if (s.minDuration > s.maxDuration) {
      ctx.addIssue({ code: 'custom', path: ['minDuration'], message: 'may not be longer than maxDuration' });
    }
    const d = s.defaultDuration;
    if (d !== undefined && (d < s.minDuration || d > s.maxDuration)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultDuration'],
        message: 'must lie between minDuration and maxDuration',
      });
    }
    if (s.approvers.length > 0 && s.approvalsRequired > s.approvers.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['approvalsRequired'],
        message: `is ${s.approvalsRequired} but only ${s.approvers.length} approver(s) are named`,
      });
    }
  })
  // PIM offers 1 h unless the bounds exclude it; then the nearest bound.
  .transform((s) => ({
    ...s,
    defaultDuration: s.defaultDuration ?? Math.min(Math.max(60, s.minDuration), s.maxDuration),
  }));

/** The complete, checked policy of one role. */
export type RoleSettings = z.output<typeof roleSettingsSchema>;
/** What a person may write: any subset of the settings. */
export type RoleSettingsInput = z.input<typeof roleSettingsSchema>;

/** Settings written as durations (`30m`, `8h`, `2d`) by people and stored as minutes. */
export const DURATION_SETTINGS: ReadonlySet<string> = new Set([
  'maxDuration',
  'minDuration',
  'defaultDuration',
  'approvalTimeout',
  'maxEligibility',
  'maxActiveAssignment',
  'minActiveBeforeDeactivation',
]);

/** The PIM defaults. */
export const defaultRoleSettings = (): RoleSettings => roleSettingsSchema.parse({});

function isRegex(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}
