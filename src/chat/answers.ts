import type { Clock } from '../clock.ts';
import type { Db } from '../db/client.ts';
import type { Actor } from '../elevation/actor.ts';
import { recordRefusal } from '../elevation/identity-service.ts';
import type { ReviewDecision } from '../elevation/review.sql.ts';
import type { ReviewItemView, ReviewService } from '../elevation/review-service.ts';
import { isStepUpNeeded } from '../elevation/step-up-service.ts';
import { ElevateError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { type Message, plainMessage, stepUpMessage } from './messages.ts';

/** Why a chat user cannot act (no email, not known): shown to them as it is. */
export class UnknownPerson extends Error {}

/** What a chat surface needs to answer a failure and to audit a refusal. */
export interface AnswerContext {
  db: Db;
  clock: Clock;
  log: Logger;
}

/**
 * What to tell the person when something failed: the core's own message, the identity
 * problem, or a generic line (the details go to the log, never to chat).
 */
export function explain(ctx: AnswerContext, error: unknown): string {
  if (error instanceof ElevateError || error instanceof UnknownPerson) return error.message;
  ctx.log.error({ err: error }, 'chat action failed');
  return 'Something went wrong on our side; please try again in a moment.';
}

/**
 * The message for a failure: when the core waits for a step-up, the step-up message (its link is
 * a *Verify your identity* button once rendered); otherwise `explain`'s line.
 */
export function failureMessage(ctx: AnswerContext, error: unknown): Message {
  return isStepUpNeeded(error) ? stepUpMessage(error.link) : plainMessage(explain(ctx, error));
}

/**
 * A refused attempt (forged or replayed button or card data, not an approver, not an admin)
 * changes nothing but is audited. Other errors are not refusals.
 */
export async function auditRefusal(
  ctx: AnswerContext,
  person: { actor: Actor } | undefined,
  error: unknown,
  action: string,
  subject: { type: string; id: string },
): Promise<void> {
  if (!(error instanceof ElevateError) || error.code !== 'forbidden' || !person) return;
  await recordRefusal(ctx.db, {
    actor: person.actor,
    action,
    subjectType: subject.type,
    subjectId: subject.id,
    reason: error.message,
    at: ctx.clock(),
  }).catch((e) => ctx.log.error({ err: e }, 'could not audit a refused attempt'));
}

/**
 * The review item behind a Keep / Remove click, if it waits for this reviewer. Otherwise the review
 * service says why — not theirs (refused and audited there), decided already (by whom), the review
 * ended, no such item: asked with an empty justification, which it never accepts, it changes nothing.
 */
export async function waitingReviewItem(
  reviews: ReviewService,
  person: { actor: Actor; principal: { id: string } },
  itemId: string,
  decision: ReviewDecision,
): Promise<ReviewItemView> {
  const item = (await reviews.waitingFor(person.principal.id)).find((i) => i.itemId === itemId);
  if (item) return item;
  await reviews.decide({ actor: person.actor, itemId, decision, justification: '' });
  throw new Error('a review decision without a justification was accepted');
}
