import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/client.ts';
import type { ActivationService } from '../../elevation/activation-service.ts';
import { type Actor, principalActor } from '../../elevation/actor.ts';
import type { AdminService } from '../../elevation/admin-service.ts';
import { recordRefusal } from '../../elevation/identity-service.ts';
import type { Principal } from '../../elevation/principal-repository.ts';
import { isStepUpNeeded } from '../../elevation/step-up-service.ts';
import { ElevateError, invalid } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { type Message, plainMessage, stepUpMessage } from '../messages.ts';
import type { Connector } from './connector.ts';
import { joinDateTime } from './render.ts';
import { type ActivityParty, type TeamsIdentity, UnknownPerson } from './teams-identity.ts';

/** An incoming Bot Framework activity, the fields Elevate reads (the SDK validated the token). */
export interface IncomingActivity extends ActivityParty {
  type: string;
  id?: string;
  name?: string;
  text?: string;
  value?: unknown;
  action?: string;
  recipient: { id: string; name?: string };
  membersAdded?: { id: string; aadObjectId?: string }[];
}

/** What every Teams handler works with: the core services and the Teams-side helpers. */
export interface TeamsContext {
  db: Db;
  clock: Clock;
  log: Logger;
  activations: ActivationService;
  admin: AdminService;
  identity: TeamsIdentity;
  connector: Connector;
}

/** The person behind an activity, as a principal and as the actor the core checks. */
export interface Person {
  principal: Principal;
  actor: Actor;
}

/** Resolves the sender; who acts comes from the validated activity's sender, never from card data. */
export async function personOf(ctx: TeamsContext, activity: IncomingActivity): Promise<Person> {
  const principal = await ctx.identity.principalOf(activity);
  return { principal, actor: principalActor(principal) };
}

/**
 * What to tell the person when something failed: the core's own message, the identity problem,
 * or a generic line (details go to the log, never to chat).
 */
export function explain(ctx: TeamsContext, error: unknown): string {
  if (error instanceof ElevateError || error instanceof UnknownPerson) return error.message;
  ctx.log.error({ err: error }, 'Teams action failed');
  return 'Something went wrong on our side; please try again in a moment.';
}

/**
 * The message for a failure: when the core waits for a step-up, the step-up message (its link is
 * a *Verify your identity* button once rendered); otherwise `explain`'s line.
 */
export function failureMessage(ctx: TeamsContext, error: unknown): Message {
  if (isStepUpNeeded(error)) return stepUpMessage(error.link);
  return plainMessage(explain(ctx, error));
}

/** A refused attempt (forged card data, not an approver, not an admin) changes nothing but is audited. */
export async function auditRefusal(
  ctx: TeamsContext,
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

/** A date + time pair from a dialog as an instant; a bad one is the person's to fix, on its field. */
export function instant(data: Record<string, unknown>, name: string): Date | undefined {
  const iso = joinDateTime(data, name);
  if (!iso) return undefined;
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) throw invalid('Pick a date and a time (UTC).', name);
  return at;
}
