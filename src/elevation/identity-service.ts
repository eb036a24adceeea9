import { appendAudit } from '../audit/audit-log.ts';
import type { Db } from '../db/client.ts';
import { sql } from '../db/drizzle.ts';
import type { Actor } from './actor.ts';
import { chatIdentities } from './principal.sql.ts';
import { ensurePrincipal, type Principal } from './principal-repository.ts';

/** A chat account as its platform describes it, with the email the platform vouches for. */
export interface ChatAccount {
  platform: 'slack' | 'teams';
  /** Slack workspace (team) id / Teams tenant id. */
  tenant: string;
  /** Slack user id / Teams AAD object id. */
  externalId: string;
  email: string;
  displayName?: string;
  /** Platform data needed to reach the person later (e.g. a Teams conversation reference). */
  data?: Record<string, unknown>;
}

/**
 * The principal behind a chat account: found or created by lower-cased email and linked, so the
 * same person is one principal whichever platform or workspace they use.
 */
export async function linkChatIdentity(db: Db, account: ChatAccount): Promise<Principal> {
  const principal = await ensurePrincipal(db, account.email);
  await db
    .insert(chatIdentities)
    .values({
      platform: account.platform,
      tenant: account.tenant,
      externalId: account.externalId,
      principalId: principal.id,
      data: account.data ?? {},
    })
    .onConflictDoUpdate({
      target: [chatIdentities.platform, chatIdentities.tenant, chatIdentities.externalId],
      set: {
        principalId: principal.id,
        updatedAt: sql`now()`,
        ...(account.data ? { data: account.data } : {}),
      },
    });
  return principal;
}

/**
 * Records an attempt the server refused (a forged or replayed button, a non-admin in an admin
 * dialog): nothing changes, but the attempt is on the audit trail.
 */
export async function recordRefusal(
  db: Db,
  refusal: { actor: Actor; action: string; subjectType: string; subjectId: string; reason: string; at: Date },
): Promise<void> {
  await db.transaction((tx) =>
    appendAudit(tx, {
      actor: refusal.actor.label,
      action: `refused.${refusal.action}`,
      subjectType: refusal.subjectType,
      subjectId: refusal.subjectId,
      data: { reason: refusal.reason },
      at: refusal.at,
    }),
  );
}
