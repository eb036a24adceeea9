import { expect } from 'vitest';
import type { CliResult } from './elevate-process.ts';

/**
 * Shared steps of the whole-campaign e2e tests (slack-review-campaign, teams-review-campaign):
 * letting campaign time pass, and reading what an operator exports at the end.
 */

/** What both harnesses offer around the running server. */
export interface OperatedServer {
  pause(): Promise<number | null>;
  resume(): Promise<void>;
  cli(args: string[]): Promise<CliResult>;
  sql<T>(...queries: string[]): Promise<T[]>;
}

/**
 * Days of a campaign pass in seconds. Campaigns last days (PIM's shortest is a day, ours an hour)
 * and the server's loop runs on the real clock; src has no test hook to move it, and shortening
 * campaigns to minutes would make no sense to a reviewer. So, with the server stopped (PGlite's
 * directory is one process's; on PostgreSQL no loop pass then sees half a move), every
 * clock-stamped column of the campaigns and their items moves `by` into the past: to the server
 * that is exactly `by` having passed. Nothing else in these tests depends on the date (permanent
 * eligibilities, roles without a provider, no activations). The restart also shows that the loop
 * picks the campaigns up where they were.
 */
export async function campaignTimePasses(server: OperatedServer, by: string): Promise<void> {
  expect(by).toMatch(/^[0-9a-z ]+$/); // an interval literal, spliced into SQL
  expect(await server.pause()).toBe(0);
  const back = (column: string) => `${column} = ${column} - interval '${by}'`;
  await server.sql(
    `update access_reviews set ${['start_at', 'end_at', 'reminded_at', 'finished_at'].map(back).join(', ')}`,
    `update access_review_items set ${['decided_at', 'last_activated_at'].map(back).join(', ')}`,
  );
  await server.resume();
}

/** One exported item, as `elevate reviews export --format jsonl` writes it. */
export interface ExportedItem {
  reviewId: string;
  itemId: string;
  principal: string;
  role: string;
  reviewers: string[];
  decision: string | null;
  justification: string;
  decidedBy: string | null;
  decidedAt: string | null;
  outcome: string | null;
}

/** `elevate reviews export <id> --format csv`: its lines (CLI child process on the server's database). */
export async function exportCsv(server: OperatedServer, reviewId: string): Promise<string[]> {
  const csv = await server.cli(['reviews', 'export', reviewId, '--format', 'csv']);
  expect(csv.stderr).toBe('');
  expect(csv.code).toBe(0);
  return csv.stdout.trimEnd().split('\r\n');
}

/** `elevate reviews export <id> --format jsonl`: its items. */
export async function exportJsonl(server: OperatedServer, reviewId: string): Promise<ExportedItem[]> {
  const jsonl = await server.cli(['reviews', 'export', reviewId, '--format', 'jsonl']);
  expect(jsonl.stderr).toBe('');
  expect(jsonl.code).toBe(0);
  return jsonl.stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as ExportedItem);
}

/** An exported item as one comparable row: member, reviewers, decision, why, by whom, outcome. */
export const decisionRow = (i: ExportedItem) => [
  i.principal,
  i.reviewers,
  i.decision,
  i.justification,
  i.decidedBy,
  i.outcome,
];

/** The audit trail's `eligibility.removed` events (`elevate audit export --format jsonl`). */
export async function auditedRemovals(server: OperatedServer) {
  const audit = await server.cli(['audit', 'export', '--format', 'jsonl']);
  expect(audit.stderr).toBe('');
  return audit.stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as { action: string; actor: string; data: Record<string, unknown> })
    .filter((e) => e.action === 'eligibility.removed');
}
