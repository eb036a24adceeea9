import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/client.ts';
import type { ActivationService } from '../../elevation/activation-service.ts';
import { type Actor, principalActor } from '../../elevation/actor.ts';
import type { AdminService } from '../../elevation/admin-service.ts';
import type { AlertService } from '../../elevation/alert-service.ts';
import type { Principal } from '../../elevation/principal-repository.ts';
import type { ReviewService } from '../../elevation/review-service.ts';
import { invalid } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { Connector } from './connector.ts';
import { joinDateTime } from './render.ts';
import type { ActivityParty, TeamsIdentity } from './teams-identity.ts';

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
  alerts: AlertService;
  reviews: ReviewService;
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

/** A date + time pair from a dialog as an instant; a bad one is the person's to fix, on its field. */
export function instant(data: Record<string, unknown>, name: string): Date | undefined {
  const iso = joinDateTime(data, name);
  if (!iso) return undefined;
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) throw invalid('Pick a date and a time (UTC).', name);
  return at;
}
