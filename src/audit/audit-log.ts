import { createHash } from 'node:crypto';
import type { Tx } from '../db/client.ts';
import { desc, sql } from '../db/drizzle.ts';
import { auditEvents } from './audit.sql.ts';

/** The `prevHash` of the first event. */
export const GENESIS_HASH = '0'.repeat(64);

/** What happened, by whom, to what. `data` must be plain JSON (dates as ISO strings). */
export interface AuditEntry {
  actor: string;
  action: string;
  subjectType: string;
  subjectId: string;
  data?: Record<string, unknown>;
  at: Date;
}

/** A stored event, as the chain sees it. */
export type AuditEvent = typeof auditEvents.$inferSelect;

/**
 * Appends one event to the chain. Call it inside the transaction of the change it records
 * (see `appendAudits`).
 */
export function appendAudit(tx: Tx, entry: AuditEntry): Promise<void> {
  return appendAudits(tx, [entry]);
}

/**
 * Appends events to the chain in the given order. Call it inside the transaction of the changes
 * they record: the transaction-scoped advisory lock makes appends take turns until commit, so
 * `prevHash` always names the event committed just before, even with many writers and replicas.
 * A batch takes the lock once and links its events in memory, then inserts them in order.
 * It relies on READ COMMITTED (our only isolation level): the read after the lock sees the
 * latest commit. Hence `Tx`, not `Db`: outside a transaction the lock would protect nothing.
 */
export async function appendAudits(tx: Tx, entries: readonly AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext('elevate.audit_events'))`);
  const [last] = await tx
    .select({ hash: auditEvents.hash })
    .from(auditEvents)
    .orderBy(desc(auditEvents.seq))
    .limit(1);
  let prevHash = last?.hash ?? GENESIS_HASH;
  const rows = entries.map((entry) => {
    const event = { ...entry, data: entry.data ?? {} };
    const hash = hashEvent(prevHash, event);
    const row = { ...event, at: event.at.toISOString(), prev_hash: prevHash, hash };
    prevHash = hash;
    return row;
  });
  // The whole batch is one JSON parameter (thousands of bound values cost more to build and
  // parse than the rows themselves); seq values are taken in array order, so seq order is chain order.
  await tx.execute(sql`
    insert into ${auditEvents} (at, actor, action, subject_type, subject_id, data, prev_hash, hash)
    select at, actor, action, "subjectType", "subjectId", data, prev_hash, hash
    from rows from (jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as (
      at timestamptz, actor text, action text, "subjectType" text, "subjectId" text, data jsonb,
      prev_hash text, hash text
    )) with ordinality as e(at, actor, action, "subjectType", "subjectId", data, prev_hash, hash, n)
    order by n`);
}

/** SHA-256 over the previous hash and the event's canonical content. */
export function hashEvent(prevHash: string, event: Omit<AuditEntry, 'data'> & { data: unknown }): string {
  const content = canonicalJson({
    at: event.at.toISOString(),
    actor: event.actor,
    action: event.action,
    subjectType: event.subjectType,
    subjectId: event.subjectId,
    data: event.data,
  });
  return createHash('sha256').update(`${prevHash}\n${content}`).digest('hex');
}

/** JSON with object keys sorted at every depth, so equal content always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}
