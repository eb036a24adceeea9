import type { WebClient } from '@slack/web-api';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/client.ts';
import type { ActivationService } from '../../elevation/activation-service.ts';
import { type Actor, principalActor } from '../../elevation/actor.ts';
import type { AdminService } from '../../elevation/admin-service.ts';
import { recordRefusal } from '../../elevation/identity-service.ts';
import type { Principal } from '../../elevation/principal-repository.ts';
import { isStepUpNeeded } from '../../elevation/step-up-service.ts';
import { ElevateError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { type Message, plainMessage, stepUpMessage } from '../messages.ts';
import { type SlackIdentity, UnknownPerson } from './slack-identity.ts';

/** What every Slack listener works with: the core services and the Slack-side helpers. */
export interface SlackContext {
  db: Db;
  clock: Clock;
  log: Logger;
  client: WebClient;
  activations: ActivationService;
  admin: AdminService;
  identity: SlackIdentity;
  /** Publishes a user's App Home (the board). */
  publishHome(userId: string, principal?: Principal): Promise<void>;
  /** Tracks work that runs after the ack, so shutdown can wait for it. */
  track(work: Promise<unknown>): void;
}

/** The person behind a Slack user, as a principal and as the actor the core checks. */
export interface Person {
  principal: Principal;
  actor: Actor;
  userId: string;
}

/** Resolves the clicking/typing Slack user; the user id comes from Slack's signed request, never a button. */
export async function personOf(ctx: SlackContext, userId: string, teamId: string): Promise<Person> {
  const principal = await ctx.identity.principalOf(userId, teamId);
  return { principal, actor: principalActor(principal), userId };
}

/**
 * What to tell the person when something failed: the core's own message, the identity
 * problem, or a generic line (the details go to the log, never to chat).
 */
export function explain(ctx: SlackContext, error: unknown): string {
  if (error instanceof ElevateError || error instanceof UnknownPerson) return error.message;
  ctx.log.error({ err: error }, 'Slack action failed');
  return 'Something went wrong on our side; please try again in a moment.';
}

/**
 * The answer to a failed action: the *Verify your identity* button when the core waits for a
 * step-up sign-in, otherwise `explain`'s line.
 */
export function answerFor(ctx: SlackContext, error: unknown): Message {
  return isStepUpNeeded(error) ? stepUpMessage(error.link) : plainMessage(explain(ctx, error));
}

/**
 * A refused attempt (forged or replayed button, not an approver, not an admin) changes nothing
 * but is audited. Other errors are not refusals.
 */
export async function auditRefusal(
  ctx: SlackContext,
  person: Person | undefined,
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
