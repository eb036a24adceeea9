import type { WebClient } from '@slack/web-api';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/client.ts';
import type { ActivationService } from '../../elevation/activation-service.ts';
import { type Actor, principalActor } from '../../elevation/actor.ts';
import type { AdminService } from '../../elevation/admin-service.ts';
import type { AlertService } from '../../elevation/alert-service.ts';
import type { Principal } from '../../elevation/principal-repository.ts';
import type { ReviewService } from '../../elevation/review-service.ts';
import type { Logger } from '../../log.ts';
import type { SlackIdentity } from './slack-identity.ts';

/** What every Slack listener works with: the core services and the Slack-side helpers. */
export interface SlackContext {
  db: Db;
  clock: Clock;
  log: Logger;
  client: WebClient;
  activations: ActivationService;
  admin: AdminService;
  alerts: AlertService;
  reviews: ReviewService;
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
