import type { Db } from '../db/client.ts';
import { and, asc, gt, lte, max } from '../db/drizzle.ts';
import { auditEvents } from './audit.sql.ts';
import { GENESIS_HASH, hashEvent } from './audit-log.ts';

/** Events read per query: memory stays bounded however long the chain is. */
const BATCH_SIZE = 1000;

/**
 * The outcome of checking the chain. `count` is the number of events checked, the failing one
 * included; `lastHash` is the hash of the newest event (GENESIS_HASH for an empty log), worth
 * keeping outside the database: the chain alone cannot show that events were cut off its end.
 */
export type AuditVerification =
  | { ok: true; count: number; lastHash: string }
  | { ok: false; count: number; seq: number; reason: string };

/** Recomputes the hash chain in seq order and reports the first event that breaks it. */
export async function verifyAudit(db: Db): Promise<AuditVerification> {
  // Stop at the newest event that exists now, so a busy log cannot keep the check running forever.
  // Appends take turns under an advisory lock until commit, so nothing can commit below this seq later.
  const [head] = await db.select({ seq: max(auditEvents.seq) }).from(auditEvents);
  const lastSeq = head?.seq ?? 0;
  let count = 0;
  let previous: { seq: number; hash: string } | undefined;
  for (;;) {
    // Keyset pagination on the primary key: each batch costs the same however deep into the log.
    const batch = await db
      .select()
      .from(auditEvents)
      .where(and(gt(auditEvents.seq, previous?.seq ?? 0), lte(auditEvents.seq, lastSeq)))
      .orderBy(asc(auditEvents.seq))
      .limit(BATCH_SIZE);
    for (const event of batch) {
      count++;
      // Gaps in seq are normal (a rolled-back transaction still uses up its sequence value);
      // only the prevHash links say whether an event is missing.
      if (!previous && event.prevHash !== GENESIS_HASH) {
        return fail(
          count,
          event.seq,
          'prevHash is not the genesis hash, yet no event comes before it (earlier events were removed)',
        );
      }
      if (previous && event.prevHash !== previous.hash) {
        return fail(
          count,
          event.seq,
          `prevHash does not match event ${previous.seq}'s hash (an event was removed or reordered)`,
        );
      }
      if (hashEvent(event.prevHash, event) !== event.hash) {
        return fail(count, event.seq, 'content does not match its hash (changed after it was written)');
      }
      previous = { seq: event.seq, hash: event.hash };
    }
    if (batch.length < BATCH_SIZE) break;
  }
  return { ok: true, count, lastHash: previous?.hash ?? GENESIS_HASH };
}

function fail(count: number, seq: number, problem: string): AuditVerification {
  return { ok: false, count, seq, reason: `event ${seq}: ${problem}` };
}
