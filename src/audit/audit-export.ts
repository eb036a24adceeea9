import type { Db } from '../db/client.ts';
import { and, asc, gt, gte, lte, max, type SQL } from '../db/drizzle.ts';
import { auditEvents } from './audit.sql.ts';
import type { AuditEvent } from './audit-log.ts';

/** Events read per query: memory stays bounded however long the log is. */
const BATCH_SIZE = 1000;

/** Columns of an exported event, in order; the JSONL keys and the CSV header use the same names. */
const FIELDS = [
  'seq',
  'at',
  'actor',
  'action',
  'subjectType',
  'subjectId',
  'data',
  'prevHash',
  'hash',
] as const;

/** How to export: JSONL (one JSON object a line) or CSV (RFC 4180), optionally only events at or after `since`. */
export interface AuditExportOptions {
  format: 'jsonl' | 'csv';
  since?: Date;
}

/** Writes the audit events in seq order, one chunk per batch, and returns how many were written. */
export async function exportAudit(
  db: Db,
  options: AuditExportOptions,
  write: (chunk: string) => void | Promise<void>,
): Promise<number> {
  // A snapshot of the log as it is now: events appended while the export runs are left for the next one.
  const [head] = await db.select({ seq: max(auditEvents.seq) }).from(auditEvents);
  const lastSeq = head?.seq ?? 0;
  const format = options.format === 'csv' ? csvLine : jsonLine;
  if (options.format === 'csv') await write(`${FIELDS.join(',')}\r\n`);
  let cursor = 0;
  let written = 0;
  for (;;) {
    const conditions: SQL[] = [gt(auditEvents.seq, cursor), lte(auditEvents.seq, lastSeq)];
    // `at` is not ordered like seq (clocks of several replicas), so filter it within the seq walk.
    if (options.since) conditions.push(gte(auditEvents.at, options.since));
    const batch = await db
      .select()
      .from(auditEvents)
      .where(and(...conditions))
      .orderBy(asc(auditEvents.seq))
      .limit(BATCH_SIZE);
    if (batch.length > 0) await write(batch.map(format).join(''));
    written += batch.length;
    const last = batch.at(-1);
    if (!last || batch.length < BATCH_SIZE) break;
    cursor = last.seq;
  }
  return written;
}

function exported(event: AuditEvent) {
  return {
    seq: event.seq,
    at: event.at.toISOString(),
    actor: event.actor,
    action: event.action,
    subjectType: event.subjectType,
    subjectId: event.subjectId,
    data: event.data,
    prevHash: event.prevHash,
    hash: event.hash,
  } satisfies Record<(typeof FIELDS)[number], unknown>;
}

function jsonLine(event: AuditEvent): string {
  // JSON.stringify escapes newlines inside strings, so one event is always exactly one line.
  return `${JSON.stringify(exported(event))}\n`;
}

function csvLine(event: AuditEvent): string {
  const row = exported(event);
  return `${FIELDS.map((field) => csvCell(field === 'data' ? JSON.stringify(row.data) : String(row[field]))).join(',')}\r\n`;
}

/**
 * One RFC 4180 cell. Actor, subject ids and data come from chat users and admins, and auditors
 * open the CSV in Excel or Sheets, which run a cell starting with = + - @ (or tab / CR, per
 * OWASP) as a formula: `=HYPERLINK(...)` could leak data or mislead the reader. Such a cell gets
 * a leading apostrophe so it shows as text. The CSV is therefore for reading; the JSONL export is
 * the exact copy to recompute hashes from.
 */
export function csvCell(value: string): string {
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
