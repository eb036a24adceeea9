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
  // Each row is the event's canonical JSON, the text its hash covers, with the two hashes added:
  // the event is serialised once, not once for the hash and again for the insert.
  const rows: string[] = [];
  for (const entry of entries) {
    const content = eventContent({ ...entry, data: entry.data ?? {} });
    const hash = hashContent(prevHash, content);
    rows.push(`${content.slice(0, -1)},"hash":"${hash}","prev_hash":"${prevHash}"}`);
    prevHash = hash;
  }
  // The whole batch is one JSON parameter (thousands of bound values cost more to build and
  // parse than the rows themselves); seq values are taken in array order, so seq order is chain order.
  await tx.execute(sql`
    insert into ${auditEvents} (at, actor, action, subject_type, subject_id, data, prev_hash, hash)
    select at, actor, action, "subjectType", "subjectId", data, prev_hash, hash
    from rows from (jsonb_to_recordset(${`[${rows.join(',')}]`}::jsonb) as (
      at timestamptz, actor text, action text, "subjectType" text, "subjectId" text, data jsonb,
      prev_hash text, hash text
    )) with ordinality as e(at, actor, action, "subjectType", "subjectId", data, prev_hash, hash, n)
    order by n`);
}

/** SHA-256 over the previous hash and the event's canonical content. */
export function hashEvent(prevHash: string, event: Omit<AuditEntry, 'data'> & { data: unknown }): string {
  return hashContent(prevHash, eventContent(event));
}

/** An event's canonical content: the JSON object of its fields that the hash covers. */
function eventContent(event: Omit<AuditEntry, 'data'> & { data: unknown }): string {
  // Keys in sorted order already: only `data` may need a sorted copy.
  return canonicalJson({
    action: event.action,
    actor: event.actor,
    at: event.at.toISOString(),
    data: event.data,
    subjectId: event.subjectId,
    subjectType: event.subjectType,
  });
}

const hashContent = (prevHash: string, content: string) =>
  createHash('sha256').update(`${prevHash}\n${content}`).digest('hex');

/**
 * JSON with object keys sorted at every depth, so equal content always hashes the same. The
 * definition is `sortedJson`; plain data (what events hold) takes a faster path to the same text:
 * a copy with its keys in order only where they are not yet (usually only `data`), written by
 * JSON.stringify without a replacer. The loop hashes thousands of events a second.
 */
export function canonicalJson(value: unknown): string {
  const ordered = inKeyOrder(value);
  return ordered === NOT_PLAIN ? sortedJson(value) : JSON.stringify(ordered);
}

/** The definition: JSON.stringify with every object's entries re-made in sorted key order. */
function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

const NOT_PLAIN = Symbol('not plain');
/** Keys JSON.stringify would not write in the object's own order (array indexes go first), or that a copy cannot hold as data. */
const SPECIAL_KEY = /^(0|[1-9][0-9]*|__proto__)$/;

/**
 * `value` itself, or a copy, in which every object has its keys in sorted order, so plain
 * JSON.stringify writes what `sortedJson` writes; NOT_PLAIN for anything but strings, finite
 * numbers, booleans, null, arrays and plain objects (dates, toJSON, undefined in an array, …),
 * which `sortedJson` then writes itself.
 */
function inKeyOrder(value: unknown): unknown {
  if (typeof value === 'string' || typeof value === 'boolean' || value === null) return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : NOT_PLAIN;
  if (typeof value !== 'object') return NOT_PLAIN;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const ordered = item === undefined ? NOT_PLAIN : inKeyOrder(item);
      if (ordered === NOT_PLAIN) return NOT_PLAIN;
      if (ordered !== item) {
        copy ??= value.slice();
        copy[i] = ordered;
      }
    }
    return copy ?? value;
  }
  const proto = Object.getPrototypeOf(value);
  if ((proto !== Object.prototype && proto !== null) || 'toJSON' in value) return NOT_PLAIN;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  const values: unknown[] = [];
  let sorted = true;
  let same = true;
  for (const [i, key] of keys.entries()) {
    if (SPECIAL_KEY.test(key)) return NOT_PLAIN;
    if (i > 0 && (keys[i - 1] as string) > key) sorted = false;
    const inner = object[key];
    // JSON.stringify leaves undefined entries out, in the copy as in the original.
    const ordered = inner === undefined ? inner : inKeyOrder(inner);
    if (ordered === NOT_PLAIN) return NOT_PLAIN;
    if (ordered !== inner) same = false;
    values.push(ordered);
  }
  if (sorted && same) return object;
  const copy: Record<string, unknown> = {};
  for (const i of keys
    .map((_, i) => i)
    .sort((a, b) => ((keys[a] as string) < (keys[b] as string) ? -1 : 1))) {
    copy[keys[i] as string] = values[i];
  }
  return copy;
}
