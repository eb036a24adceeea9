import type { Db, Tx } from '../db/client.ts';
import { and, desc, eq, gte, idIn, inArray, isNull, ne, sql } from '../db/drizzle.ts';
import { conflict, notFound } from '../errors.ts';
import { type ActivationStatus, activations, decisions, OPEN_STATUSES } from './activation.sql.ts';
import { principals } from './principal.sql.ts';
import { roles } from './role.sql.ts';

/** A stored activation (or assignment, or extension request). */
export type Activation = typeof activations.$inferSelect;
/** The columns a transition may set besides the status. */
export type ActivationChanges = Partial<Omit<typeof activations.$inferInsert, 'id' | 'status'>>;

/** An activation with its role and its principal, as the services and the surfaces show it. */
export interface ActivationView {
  activation: Activation;
  role: typeof roles.$inferSelect;
  principal: typeof principals.$inferSelect;
}

/** Activations joined to their role and principal, as `ActivationView`s once a `where` is added. */
function selectViews(db: Db) {
  return db
    .select({ activation: activations, role: roles, principal: principals })
    .from(activations)
    .innerJoin(roles, eq(roles.id, activations.roleId))
    .innerJoin(principals, eq(principals.id, activations.principalId));
}

/** Loads an activation with its role and principal; `lock` takes the row lock (inside a tx only). */
export async function getActivation(
  db: Db,
  id: string,
  options: { lock?: boolean } = {},
): Promise<ActivationView> {
  if (!isUuid(id)) throw notFound(`There is no activation "${id}".`);
  const query = selectViews(db).where(eq(activations.id, id));
  const [row] = options.lock ? await query.for('update', { of: activations }) : await query;
  if (!row) throw notFound(`There is no activation "${id}".`);
  return row;
}

/**
 * The one way an activation changes status: a conditional update that succeeds for exactly one
 * caller however many race, returning the new row, or undefined when the row had moved on.
 */
export async function transition(
  tx: Db,
  id: string,
  from: readonly ActivationStatus[],
  to: ActivationStatus,
  changes: ActivationChanges & { updatedAt: Date },
): Promise<Activation | undefined> {
  const [row] = await moveStatus(tx, [id], from, to, changes).returning();
  return row;
}

/**
 * `transition` for many rows in one statement (the loop's batches): the ids of the rows that
 * moved (nothing read back); a row that had moved on is left out, as `transition` leaves it alone.
 */
export async function transitionIds(
  tx: Db,
  ids: readonly string[],
  from: readonly ActivationStatus[],
  to: ActivationStatus,
  changes: ActivationChanges & { updatedAt: Date },
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await moveStatus(tx, ids, from, to, changes).returning({ id: activations.id });
  return new Set(rows.map((row) => row.id));
}

/** The conditional update both share: only rows of `ids` still in a `from` status move to `to`. */
function moveStatus(
  tx: Db,
  ids: readonly string[],
  from: readonly ActivationStatus[],
  to: ActivationStatus,
  changes: ActivationChanges & { updatedAt: Date },
) {
  return tx
    .update(activations)
    .set({ ...changes, status: to })
    .where(and(idIn(activations.id, ids), inArray(activations.status, from)));
}

/**
 * `transitionIds` for rows this transaction read under its row lock (FOR UPDATE): what they are
 * now is what was read with the changes applied, so nothing is read back (a batch of the loop
 * would otherwise map a thousand whole rows again). Returns those rows, for the reads that moved.
 */
export async function transitionLocked(
  tx: Tx,
  reads: readonly Activation[],
  from: readonly ActivationStatus[],
  to: ActivationStatus,
  changes: ActivationChanges & { updatedAt: Date },
): Promise<Activation[]> {
  const moved = await transitionIds(
    tx,
    reads.map((read) => read.id),
    from,
    to,
    changes,
  );
  return reads.filter((read) => moved.has(read.id)).map((read) => ({ ...read, ...changes, status: to }));
}

/**
 * Renews the in-flight leases of grants and revokes just before their provider calls, for the
 * rows still as the caller read them (same status, same lease): a claim counts from its provider
 * call, not from the start of its batch. Returns the ids renewed; a row missing from it was taken
 * over by another replica meanwhile (the lease ran out while earlier rows of a long batch were
 * settled) or moved on: leave it be. One statement per distinct (status, lease), usually one.
 */
export async function renewLeases(db: Db, reads: readonly Activation[], until: Date): Promise<Set<string>> {
  const groups = new Map<string, Activation[]>();
  for (const read of reads) {
    const key = `${read.status} ${read.nextAttemptAt?.getTime() ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), read]);
  }
  const renewed = new Set<string>();
  for (const group of groups.values()) {
    const [first] = group;
    if (!first) continue;
    const rows = await db
      .update(activations)
      .set({ nextAttemptAt: until })
      .where(
        and(
          idIn(
            activations.id,
            group.map((read) => read.id),
          ),
          eq(activations.status, first.status),
          first.nextAttemptAt
            ? eq(activations.nextAttemptAt, first.nextAttemptAt)
            : isNull(activations.nextAttemptAt),
        ),
      )
      .returning({ id: activations.id });
    for (const row of rows) renewed.add(row.id);
  }
  return renewed;
}

/** Inserts a new activation; a second open one for the same principal and role is a conflict. */
export async function insertActivation(
  tx: Db,
  values: typeof activations.$inferInsert,
  roleName: string,
): Promise<Activation> {
  try {
    const [row] = await tx.insert(activations).values(values).returning();
    if (!row) throw new Error('insert returned no row');
    return row;
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw conflict(
        values.kind === 'extension'
          ? `An extension of ${roleName} is already waiting for approval.`
          : `There is already an open request or activation of ${roleName}; cancel or deactivate it first.`,
      );
    }
    throw error;
  }
}

/** The open activation (any kind but extension) of a principal for a role, if any. */
export async function findOpenActivation(db: Db, principalId: string, roleId: string) {
  const [row] = await db
    .select()
    .from(activations)
    .where(
      and(
        eq(activations.principalId, principalId),
        eq(activations.roleId, roleId),
        ne(activations.kind, 'extension'),
        inArray(activations.status, OPEN_STATUSES),
      ),
    );
  return row;
}

/** The decisions on a request, newest first, with the deciders' emails. */
export async function listDecisions(db: Db, activationId: string) {
  return db
    .select({
      verdict: decisions.verdict,
      comment: decisions.comment,
      decidedAt: decisions.decidedAt,
      approverId: decisions.approverId,
      approverEmail: principals.email,
    })
    .from(decisions)
    .innerJoin(principals, eq(principals.id, decisions.approverId))
    .where(eq(decisions.activationId, activationId))
    .orderBy(desc(decisions.decidedAt));
}

/** Activations (and assignments) with their role and principal, newest first, for lists and the CLI. */
export async function listActivations(
  db: Db,
  filter: {
    principalId?: string;
    roleId?: string;
    statuses?: readonly ActivationStatus[];
    since?: Date;
    limit?: number;
  } = {},
): Promise<ActivationView[]> {
  return selectViews(db)
    .where(
      and(
        filter.principalId ? eq(activations.principalId, filter.principalId) : undefined,
        filter.roleId ? eq(activations.roleId, filter.roleId) : undefined,
        filter.statuses ? inArray(activations.status, filter.statuses) : undefined,
        filter.since ? gte(activations.createdAt, filter.since) : undefined,
      ),
    )
    .orderBy(desc(activations.createdAt))
    .limit(filter.limit ?? 1000);
}

/**
 * A principal's open activations, newest first (the board's `listActivations`), as a statement
 * built once for `db` (on first use): the board is read on every `/elevate`, and drizzle building
 * the query each time cost the server's thread more than the query's own round trip.
 */
export function prepareOpenActivations(db: Db): (principalId: string) => Promise<ActivationView[]> {
  let query: ReturnType<typeof build> | undefined;
  const build = () =>
    selectViews(db)
      .where(
        and(
          eq(activations.principalId, sql.placeholder('principalId')),
          inArray(activations.status, OPEN_STATUSES),
        ),
      )
      .orderBy(desc(activations.createdAt))
      .limit(1000)
      .prepare('open_activations_of_principal');
  return (principalId) => {
    query ??= build();
    return query.execute({ principalId });
  };
}

/** PostgreSQL's unique_violation, whichever driver (and drizzle wrapper) reports it. */
function isUniqueViolation(error: unknown): boolean {
  for (let e = error as { code?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === '23505') return true;
  }
  return false;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Ids come from people and payloads; one that is not a uuid simply names nothing. */
export const isUuid = (id: string) => UUID.test(id);
