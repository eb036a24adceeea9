import { index, jsonb, pgTable, text, timestamp, uuid } from '../db/drizzle.ts';
import { principals } from './principal.sql.ts';

/** What a step-up lets happen once the person has signed in again with MFA. */
export type StepUpPurpose =
  | {
      kind: 'activation';
      roleName: string;
      /** The request as the person made it; `startAt` as ISO 8601. */
      ask: {
        durationMinutes?: number;
        startAt?: string;
        justification?: string;
        ticketSystem?: string;
        ticketNumber?: string;
      };
    }
  | { kind: 'decision'; activationId: string; verdict: 'approve' | 'deny'; comment?: string };

const ts = () => timestamp({ withTimezone: true });

/**
 * One step-up: a one-time link for one principal and one waiting action. The link's id is only
 * stored hashed; `state`, `nonce` and `codeVerifier` belong to the sign-in it started. Verified
 * rows also serve the remember window (a fresh step-up covers the person's next ones briefly).
 */
export const stepUps = pgTable(
  'step_ups',
  {
    id: uuid().primaryKey().defaultRandom(),
    /** SHA-256 (hex) of the one-time id in the link. */
    tokenHash: text().notNull().unique(),
    principalId: uuid()
      .notNull()
      .references(() => principals.id),
    purpose: jsonb().$type<StepUpPurpose>().notNull(),
    createdAt: ts().notNull(),
    /** The link works until then, and once. */
    expiresAt: ts().notNull(),
    /** When the link was opened and the sign-in started (a second opening is refused). */
    openedAt: ts(),
    state: text().unique(),
    nonce: text(),
    codeVerifier: text(),
    /** When the sign-in came back, accepted or not (a second callback is refused). */
    finishedAt: ts(),
    /** Set when the sign-in passed every check. */
    verifiedAt: ts(),
    authTime: ts(),
    /** Why the sign-in was refused. */
    refusal: text(),
    /** When the waiting action consumed this step-up. */
    usedAt: ts(),
  },
  (t) => [index().on(t.principalId, t.verifiedAt)],
);
