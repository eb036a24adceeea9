import type { Db } from '../db/client.ts';
import { and, asc, eq, inArray, isNull } from '../db/drizzle.ts';
import { notFound } from '../errors.ts';
import { principals } from './principal.sql.ts';
import { eligibilities, roles } from './role.sql.ts';

/** A stored role with its settings. */
export type Role = typeof roles.$inferSelect;
/** A stored eligibility. */
export type Eligibility = typeof eligibilities.$inferSelect;

/** The live (not archived) role with this name, or a not_found error naming it. */
export async function getRoleByName(db: Db, name: string): Promise<Role> {
  const [role] = await db
    .select()
    .from(roles)
    .where(and(eq(roles.name, name.trim().toLowerCase()), isNull(roles.archivedAt)));
  if (!role) throw notFound(`There is no role named "${name}".`);
  return role;
}

/** Every role, archived ones included when asked. */
export async function listRoles(db: Db, options: { includeArchived?: boolean } = {}): Promise<Role[]> {
  return db
    .select()
    .from(roles)
    .where(options.includeArchived ? undefined : isNull(roles.archivedAt))
    .orderBy(asc(roles.name));
}

/** The eligibility of a principal for a role, if any. */
export async function findEligibility(db: Db, principalId: string, roleId: string) {
  const [row] = await db
    .select()
    .from(eligibilities)
    .where(and(eq(eligibilities.principalId, principalId), eq(eligibilities.roleId, roleId)));
  return row;
}

/** Ids of the principals a role names as approvers (emails in its settings). */
export async function namedApproverIds(db: Db, role: Role): Promise<string[]> {
  if (role.settings.approvers.length === 0) return [];
  const rows = await db
    .select({ id: principals.id })
    .from(principals)
    .where(inArray(principals.email, role.settings.approvers));
  return rows.map((r) => r.id);
}

/** Every eligibility with its principal's email and role name, for admin lists. */
export async function listEligibilities(db: Db) {
  return db
    .select({
      email: principals.email,
      roleName: roles.name,
      startAt: eligibilities.startAt,
      endAt: eligibilities.endAt,
    })
    .from(eligibilities)
    .innerJoin(principals, eq(principals.id, eligibilities.principalId))
    .innerJoin(roles, eq(roles.id, eligibilities.roleId))
    .orderBy(asc(roles.name), asc(principals.email));
}
