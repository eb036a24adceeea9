import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/client.ts';
import { and, eq } from '../../db/drizzle.ts';
import { linkChatIdentity } from '../../elevation/identity-service.ts';
import { chatIdentities } from '../../elevation/principal.sql.ts';
import { findPrincipalByEmail, type Principal } from '../../elevation/principal-repository.ts';
import { UnknownPerson } from '../answers.ts';
import type { Connector, TeamsMember } from './connector.ts';

/** How long a Teams user's email is trusted before the connector is asked again. */
const EMAIL_TTL_MS = 10 * 60_000;

/**
 * How to reach a Teams user later, kept on their chat identity: their Teams user id (`29:…`), the
 * service URL of their tenant, and the 1:1 conversation with the bot once there is one.
 */
export interface ConversationReference {
  userId: string;
  serviceUrl: string;
  conversationId?: string;
}

/** The parts of an incoming activity identity needs. */
export interface ActivityParty {
  serviceUrl: string;
  from: { id: string; aadObjectId?: string; name?: string };
  conversation: { id: string; conversationType?: string; tenantId?: string };
  channelData?: { tenant?: { id?: string }; team?: { id?: string }; channel?: { id?: string } };
}

/** The tenant an activity comes from. */
export const tenantOf = (activity: ActivityParty) =>
  activity.conversation.tenantId ?? activity.channelData?.tenant?.id ?? '';

/**
 * Teams users ↔ principals. The key is the AAD object id per tenant; Teams vouches for the email
 * through the connector's member lookup (the activity itself carries none). The same lower-cased
 * email is the same principal as in Slack.
 */
export function createTeamsIdentity(deps: { db: Db; clock: Clock; connector: Connector; botId: string }) {
  const { db, connector } = deps;
  const emails = new Map<string, { email: string; until: number }>();

  async function storedReference(tenant: string, aadObjectId: string) {
    const [row] = await db
      .select({ data: chatIdentities.data, principalId: chatIdentities.principalId })
      .from(chatIdentities)
      .where(
        and(
          eq(chatIdentities.platform, 'teams'),
          eq(chatIdentities.tenant, tenant),
          eq(chatIdentities.externalId, aadObjectId),
        ),
      );
    return row;
  }

  /**
   * Links a member to their principal, keeping what we knew of how to reach them: a personal
   * conversation is remembered, and never forgotten because the person also wrote in a channel.
   */
  async function link(
    member: TeamsMember,
    tenant: string,
    serviceUrl: string,
    personalConversationId?: string,
  ): Promise<Principal | undefined> {
    const email =
      member.email ?? (member.userPrincipalName?.includes('@') ? member.userPrincipalName : undefined);
    if (!member.aadObjectId || !email) return undefined;
    const existing = await storedReference(tenant, member.aadObjectId);
    const before = (existing?.data ?? {}) as Partial<ConversationReference>;
    const reference: ConversationReference = {
      userId: member.id,
      serviceUrl,
      ...((personalConversationId ?? before.conversationId)
        ? { conversationId: personalConversationId ?? before.conversationId }
        : {}),
    };
    const principal = await linkChatIdentity(db, {
      platform: 'teams',
      tenant,
      externalId: member.aadObjectId,
      email,
      displayName: member.name,
      data: { ...reference },
    });
    emails.set(`${tenant}/${member.aadObjectId}`, {
      email: principal.email,
      until: deps.clock().getTime() + EMAIL_TTL_MS,
    });
    return principal;
  }

  /** The principal behind an activity's sender, linked on first sight; throws UnknownPerson. */
  async function principalOf(activity: ActivityParty): Promise<Principal> {
    const tenant = tenantOf(activity);
    const aad = activity.from.aadObjectId;
    if (!aad)
      throw new UnknownPerson(
        'Elevate works with people of your organization; Teams did not say who you are.',
      );
    const personal = activity.conversation.conversationType === 'personal';
    const cached = emails.get(`${tenant}/${aad}`);
    if (cached && cached.until > deps.clock().getTime()) {
      const stored = personal ? await storedReference(tenant, aad) : undefined;
      const known = (stored?.data as Partial<ConversationReference> | undefined)?.conversationId;
      // A new personal chat (reinstalled app) is remembered; otherwise the cache answers.
      if (!personal || known === activity.conversation.id) {
        const principal = await findPrincipalByEmail(db, cached.email);
        if (principal) return principal;
      }
    }
    const member = await connector.member(activity.serviceUrl, activity.conversation.id, activity.from.id);
    const principal = await link(
      { ...member, id: member.id || activity.from.id, aadObjectId: member.aadObjectId ?? aad },
      tenant,
      activity.serviceUrl,
      personal ? activity.conversation.id : undefined,
    );
    if (!principal) {
      throw new UnknownPerson(
        'Elevate knows people by their email address, and Teams did not share yours. Ask an Elevate admin to check your account has one.',
      );
    }
    return principal;
  }

  /** Links a whole roster (the bot was added to a team or group chat); returns how many. */
  async function linkRoster(activity: ActivityParty): Promise<number> {
    const tenant = tenantOf(activity);
    const members = await connector.members(activity.serviceUrl, activity.conversation.id);
    let linked = 0;
    for (const member of members) if (await link(member, tenant, activity.serviceUrl)) linked++;
    return linked;
  }

  /**
   * The 1:1 conversation to reach a principal in: the stored one, or a new one created through
   * the connector (and remembered) when we know the person but they never opened a chat with the
   * bot. Undefined when the principal has no Teams identity at all.
   */
  async function conversationOf(
    principal: Principal,
  ): Promise<
    { serviceUrl: string; conversationId: string; userId: string; aadObjectId: string } | undefined
  > {
    const rows = await db
      .select()
      .from(chatIdentities)
      .where(and(eq(chatIdentities.platform, 'teams'), eq(chatIdentities.principalId, principal.id)));
    const row = rows.find((r) => (r.data as Partial<ConversationReference>).conversationId) ?? rows[0];
    if (!row) return undefined;
    const ref = row.data as Partial<ConversationReference>;
    if (!ref.userId || !ref.serviceUrl) return undefined;
    if (ref.conversationId)
      return {
        serviceUrl: ref.serviceUrl,
        conversationId: ref.conversationId,
        userId: ref.userId,
        aadObjectId: row.externalId,
      };
    const conversationId = await connector.createPersonalConversation(ref.serviceUrl, {
      botId: deps.botId,
      userId: ref.userId,
      tenantId: row.tenant,
    });
    await db
      .update(chatIdentities)
      .set({ data: { ...ref, conversationId } })
      .where(
        and(
          eq(chatIdentities.platform, 'teams'),
          eq(chatIdentities.tenant, row.tenant),
          eq(chatIdentities.externalId, row.externalId),
        ),
      );
    return { serviceUrl: ref.serviceUrl, conversationId, userId: ref.userId, aadObjectId: row.externalId };
  }

  /** The Teams user ids (MRIs, `29:…`) of principals, for a card's automatic refresh. */
  async function teamsUserIds(principalIds: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const id of principalIds) {
      const rows = await db
        .select({ data: chatIdentities.data })
        .from(chatIdentities)
        .where(and(eq(chatIdentities.platform, 'teams'), eq(chatIdentities.principalId, id)));
      for (const row of rows) {
        const userId = (row.data as Partial<ConversationReference>).userId;
        if (userId) ids.push(userId);
      }
    }
    return ids;
  }

  return { principalOf, linkRoster, conversationOf, teamsUserIds };
}

/** The Teams identity service's interface. */
export type TeamsIdentity = ReturnType<typeof createTeamsIdentity>;
