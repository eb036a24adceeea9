import type { WebClient } from '@slack/web-api';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/client.ts';
import { linkChatIdentity } from '../../elevation/identity-service.ts';
import {
  listChatIdentities,
  type Principal,
  preparePrincipalByEmail,
} from '../../elevation/principal-repository.ts';
import { UnknownPerson } from '../answers.ts';

/** How long a Slack user's email is trusted before `users.info` is asked again. */
const EMAIL_TTL_MS = 10 * 60_000;

/**
 * Slack users ↔ principals. Slack vouches for the email (`users.info`, scope users:read.email);
 * it is cached per process, the principal is read fresh each time (admin flags change).
 */
export function createSlackIdentity(deps: { client: WebClient; db: Db; clock: Clock }) {
  const { client, db } = deps;
  const emails = new Map<string, { email: string; until: number }>();
  const principalByEmail = preparePrincipalByEmail(db);

  /** The principal behind a Slack user, linked on first sight; throws UnknownPerson without an email. */
  async function principalOf(userId: string, teamId: string): Promise<Principal> {
    const key = `${teamId}/${userId}`;
    const cached = emails.get(key);
    const now = deps.clock().getTime();
    if (cached && cached.until > now) {
      const principal = await principalByEmail(cached.email);
      if (principal) return principal;
    }
    const info = await client.users.info({ user: userId });
    const user = info.user;
    const email = user?.profile?.email;
    if (!user || user.deleted || user.is_bot || !email) {
      throw new UnknownPerson(
        'Elevate knows people by their email address, and Slack did not share yours. Ask an Elevate admin to check the app has the users:read.email scope and that your profile has an email.',
      );
    }
    const principal = await linkChatIdentity(db, {
      platform: 'slack',
      tenant: user.team_id ?? teamId,
      externalId: userId,
      email,
      displayName: user.real_name ?? user.name,
    });
    emails.set(key, { email: principal.email, until: now + EMAIL_TTL_MS });
    return principal;
  }

  /**
   * The Slack user to reach a principal: a linked identity, or found by email
   * (`users.lookupByEmail`) and linked, so approvers who never used Elevate still get their cards.
   */
  async function slackUserOf(principal: Principal): Promise<string | undefined> {
    const linked = (await listChatIdentities(db, principal.id)).find((i) => i.platform === 'slack');
    if (linked) return linked.externalId;
    let user: { id?: string; team_id?: string } | undefined;
    try {
      user = (await client.users.lookupByEmail({ email: principal.email })).user;
    } catch (error) {
      if ((error as { data?: { error?: string } }).data?.error === 'users_not_found') return undefined;
      throw error;
    }
    if (!user?.id) return undefined;
    await linkChatIdentity(db, {
      platform: 'slack',
      tenant: user.team_id ?? '',
      externalId: user.id,
      email: principal.email,
    });
    return user.id;
  }

  /** Slack users of principals by email, for pickers' initial values (only those already linked). */
  async function linkedUsers(principals: Principal[]): Promise<string[]> {
    const ids: string[] = [];
    for (const p of principals) {
      const linked = (await listChatIdentities(db, p.id)).find((i) => i.platform === 'slack');
      if (linked) ids.push(linked.externalId);
    }
    return ids;
  }

  return { principalOf, slackUserOf, linkedUsers };
}

/** The Slack identity service's interface. */
export type SlackIdentity = ReturnType<typeof createSlackIdentity>;
