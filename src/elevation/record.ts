import { appendAudits } from '../audit/audit-log.ts';
import type { Tx } from '../db/client.ts';
import { sql } from '../db/drizzle.ts';
import type { Actor } from './actor.ts';
import { notifications } from './notification.sql.ts';

/** A message for one principal, rendered later by each chat platform (chat/messages.ts). */
export interface Notice {
  recipientId: string;
  kind: string;
  data?: Record<string, unknown>;
}

/** One state change as the outside world learns of it. */
export interface Change {
  actor: Actor;
  action: string;
  subjectType: 'activation' | 'role' | 'eligibility' | 'principal' | 'policy' | 'review';
  subjectId: string;
  data?: Record<string, unknown>;
  at: Date;
  activationId?: string;
  notify?: Notice[];
}

/** A change to one activation, as `recordChanges` takes it. */
export type ActivationChange = Omit<Change, 'subjectType' | 'subjectId' | 'activationId'>;

/**
 * Writes the audit event and the outbox rows of a change. Call it in the transaction that made
 * the change, so state, audit and notifications commit together or not at all.
 */
export function recordChange(tx: Tx, change: Change): Promise<void> {
  return recordChanges(tx, [change]);
}

/**
 * Writes the audit events and outbox rows of many changes (a batch of the loop) in bulk: one
 * INSERT each and one turn at the audit chain, with the events in `changes`' order. Same
 * contract as `recordChange`.
 */
export async function recordChanges(tx: Tx, changes: readonly Change[]): Promise<void> {
  const rows = changes.flatMap((change) =>
    (change.notify ?? []).map((n) => ({
      recipient_id: n.recipientId,
      kind: n.kind,
      activation_id: change.activationId ?? null,
      data: n.data ?? {},
      next_attempt_at: change.at.toISOString(),
    })),
  );
  if (rows.length > 0) {
    // One JSON parameter for the whole batch, as for the audit events (audit-log.ts).
    await tx.execute(sql`
      insert into ${notifications} (recipient_id, kind, activation_id, data, next_attempt_at)
      select recipient_id, kind, activation_id, data, next_attempt_at
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as (
        recipient_id uuid, kind text, activation_id uuid, data jsonb, next_attempt_at timestamptz
      )`);
  }
  // Last: the audit append holds the chain lock until commit, so keep it at the very end.
  await appendAudits(
    tx,
    changes.map((change) => ({
      actor: change.actor.label,
      action: change.action,
      subjectType: change.subjectType,
      subjectId: change.subjectId,
      data: change.data,
      at: change.at,
    })),
  );
}

/** A change to one activation: its id is the audit subject and the notifications' reference. */
export function activationChange(activationId: string, change: ActivationChange): Change {
  return { ...change, subjectType: 'activation', subjectId: activationId, activationId };
}

/** Records a change to one activation (see `activationChange`). */
export function recordActivationChange(
  tx: Tx,
  activationId: string,
  change: ActivationChange,
): Promise<void> {
  return recordChange(tx, activationChange(activationId, change));
}
