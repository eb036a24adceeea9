import { index, integer, jsonb, pgTable, sql, text, timestamp, uniqueIndex, uuid } from '../db/drizzle.ts';
import { principals } from './principal.sql.ts';
import { roles } from './role.sql.ts';

/** Who reviews a campaign's members: the role's approvers, named principals, or each member. */
export const REVIEWER_MODES = ['approvers', 'named', 'self'] as const;
export type ReviewerMode = (typeof REVIEWER_MODES)[number];
export const RECURRENCES = ['weekly', 'monthly', 'quarterly'] as const;
export type Recurrence = (typeof RECURRENCES)[number];
export const REVIEW_DECISIONS = ['keep', 'remove'] as const;
export type ReviewDecision = (typeof REVIEW_DECISIONS)[number];

const ts = () => timestamp({ withTimezone: true });

/**
 * An access review campaign (PIM's access review): which roles, who reviews, until when, and what
 * happens to members nobody reviewed. A recurring campaign starts the next one when it finishes.
 */
export const accessReviews = pgTable(
  'access_reviews',
  {
    id: uuid().primaryKey().defaultRandom(),
    /** The policy file's name for a recurring review; null for one started by hand. */
    name: text(),
    roleNames: jsonb().$type<string[]>().notNull(),
    reviewers: text({ enum: REVIEWER_MODES }).notNull(),
    /** Emails of the named reviewers (mode `named`). */
    reviewerEmails: jsonb().$type<string[]>().notNull().default([]),
    durationMinutes: integer().notNull(),
    recurrence: text({ enum: RECURRENCES }),
    unreviewed: text({ enum: REVIEW_DECISIONS }).notNull().default('keep'),
    status: text({ enum: ['scheduled', 'running', 'finished'] })
      .notNull()
      .default('running'),
    startAt: ts().notNull(),
    endAt: ts().notNull(),
    remindedAt: ts(),
    finishedAt: ts(),
    createdBy: text().notNull(),
  },
  (t) => [
    index().on(t.status, t.endAt),
    // One running campaign per named (policy file) review: re-applying never starts a second.
    uniqueIndex('access_reviews_one_running').on(t.name).where(sql`status = 'running' and name is not null`),
  ],
);

/** One member's eligibility under review, with what the reviewer card shows and the decision. */
export const accessReviewItems = pgTable(
  'access_review_items',
  {
    id: uuid().primaryKey().defaultRandom(),
    reviewId: uuid()
      .notNull()
      .references(() => accessReviews.id),
    principalId: uuid()
      .notNull()
      .references(() => principals.id),
    roleId: uuid()
      .notNull()
      .references(() => roles.id),
    /** The principals who may decide this item (any one decides). */
    reviewerIds: jsonb().$type<string[]>().notNull(),
    /** Computed at the start, for the card: the last activation and how many in 90 days. */
    lastActivatedAt: ts(),
    activations90d: integer().notNull().default(0),
    decision: text({ enum: REVIEW_DECISIONS }),
    justification: text().notNull().default(''),
    decidedBy: text(),
    decidedAt: ts(),
    /** What the end did: `kept` or `removed` (by decision or by the unreviewed default). */
    outcome: text({ enum: ['kept', 'removed'] }),
  },
  (t) => [index().on(t.reviewId)],
);
