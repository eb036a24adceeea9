import type { Db } from '../db/client.ts';
import { and, eq, idIn, inArray, sql } from '../db/drizzle.ts';
import { invalid } from '../errors.ts';
import { chatIdentities, principals } from './principal.sql.ts';

/** A stored principal. */
export type Principal = typeof principals.$inferSelect;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Whether `text` has the shape of an email address (what principals are keyed by). */
export const isEmail = (text: string) => EMAIL.test(text.trim().toLowerCase());

/** The canonical key of a principal: trimmed, lower-cased; refuses what is not an email. */
export function normalizeEmail(email: string): string {
  const key = email.trim().toLowerCase();
  if (!EMAIL.test(key)) throw invalid(`"${email}" is not an email address`);
  return key;
}

/** The principal with this email, created on first sight (people are named before they chat). */
export async function ensurePrincipal(db: Db, email: string): Promise<Principal> {
  const key = normalizeEmail(email);
  const [created] = await db.insert(principals).values({ email: key }).onConflictDoNothing().returning();
  if (created) return created;
  const [existing] = await db.select().from(principals).where(eq(principals.email, key));
  if (!existing) throw new Error(`principal ${key} vanished after insert`);
  return existing;
}

/** The principal with this email, if any. */
export async function findPrincipalByEmail(db: Db, email: string): Promise<Principal | undefined> {
  const [row] = await db.select().from(principals).where(eq(principals.email, email.trim().toLowerCase()));
  return row;
}

/**
 * `findPrincipalByEmail` as a statement built once for `db` (on first use), for the chat
 * surfaces, which look the principal up afresh on every request (admin flags change).
 */
export function preparePrincipalByEmail(db: Db): (email: string) => Promise<Principal | undefined> {
  let query: ReturnType<typeof build> | undefined;
  const build = () =>
    db
      .select()
      .from(principals)
      .where(eq(principals.email, sql.placeholder('email')))
      .prepare('principal_by_email');
  return async (email) => {
    query ??= build();
    return (await query.execute({ email: email.trim().toLowerCase() }))[0];
  };
}

/** Principals by id, for turning stored ids back into people. */
export async function principalsByIds(db: Db, ids: string[]): Promise<Principal[]> {
  if (ids.length === 0) return [];
  return db.select().from(principals).where(inArray(principals.id, ids));
}

/** The bot admins: they approve when a role names no approvers, and they are alerted. */
export async function listAdmins(db: Db): Promise<Principal[]> {
  // `is_admin` itself, not `= $1`: the partial index principals_admins then serves it.
  return db.select().from(principals).where(sql`${principals.isAdmin}`);
}

/** A principal's chat identities (Slack user per workspace, Teams AAD object per tenant). */
export async function listChatIdentities(db: Db, principalId: string) {
  return db
    .select({
      platform: chatIdentities.platform,
      tenant: chatIdentities.tenant,
      externalId: chatIdentities.externalId,
    })
    .from(chatIdentities)
    .where(eq(chatIdentities.principalId, principalId));
}

/**
 * The principal behind a Microsoft Entra object id (an ID token's `oid`): the account mapping
 * `accounts.entra`, or a Teams identity linked in that tenant (`tid`).
 */
export async function findPrincipalByObjectId(
  db: Db,
  objectId: string,
  tenant: string | undefined,
): Promise<Principal | undefined> {
  const [mapped] = await db
    .select()
    .from(principals)
    .where(sql`${principals.accounts} ->> 'entra' = ${objectId}`);
  if (mapped || !tenant) return mapped;
  const [linked] = await db
    .select({ principal: principals })
    .from(chatIdentities)
    .innerJoin(principals, eq(principals.id, chatIdentities.principalId))
    .where(
      and(
        eq(chatIdentities.platform, 'teams'),
        eq(chatIdentities.tenant, tenant),
        eq(chatIdentities.externalId, objectId),
      ),
    );
  return linked?.principal;
}

/** The chat identities of many principals at once (the loop's batches), by principal id. */
export async function chatIdentitiesOf(db: Db, principalIds: readonly string[]) {
  const byPrincipal = new Map<string, Awaited<ReturnType<typeof listChatIdentities>>>();
  if (principalIds.length === 0) return byPrincipal;
  const rows = await db
    .select({
      principalId: chatIdentities.principalId,
      platform: chatIdentities.platform,
      tenant: chatIdentities.tenant,
      externalId: chatIdentities.externalId,
    })
    .from(chatIdentities)
    .where(idIn(chatIdentities.principalId, [...new Set(principalIds)]));
  for (const { principalId, ...identity } of rows) {
    byPrincipal.set(principalId, [...(byPrincipal.get(principalId) ?? []), identity]);
  }
  return byPrincipal;
}
