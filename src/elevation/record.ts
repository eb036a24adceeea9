import { appendAudit } from '../audit/audit-log.ts';
import type { Tx } from '../db/client.ts';
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
  subjectType: 'activation' | 'role' | 'eligibility' | 'principal' | 'policy';
  subjectId: string;
  data?: Record<string, unknown>;
  at: Date;
  activationId?: string;
  notify?: Notice[];
}

/**
 * Writes the audit event and the outbox rows of a change. Call it in the transaction that made
 * the change, so state, audit and notifications commit together or not at all.
 */
export async function recordChange(tx: Tx, change: Change): Promise<void> {
  const notice = change.notify ?? [];
  if (notice.length > 0) {
    await tx.insert(notifications).values(
      notice.map((n) => ({
        recipientId: n.recipientId,
        kind: n.kind,
        activationId: change.activationId ?? null,
        data: n.data ?? {},
        nextAttemptAt: change.at,
      })),
    );
  }
  // Last: the audit append holds the chain lock until commit, so keep it at the very end.
  await appendAudit(tx, {
    actor: change.actor.label,
    action: change.action,
    subjectType: change.subjectType,
    subjectId: change.subjectId,
    data: change.data,
    at: change.at,
  });
}

/** A change to one activation: its id is the audit subject and the notifications' reference. */
export function recordActivationChange(
  tx: Tx,
  activationId: string,
  change: Omit<Change, 'subjectType' | 'subjectId' | 'activationId'>,
): Promise<void> {
  return recordChange(tx, { ...change, subjectType: 'activation', subjectId: activationId, activationId });
}
