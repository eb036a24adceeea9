/**
 * The core bench (`npm run bench -- core`): latency of the core use cases on a throwaway
 * database — embedded PGlite, or a scratch database on the PostgreSQL server of DATABASE_URL
 * (created and dropped here).
 * Prints p50/p99 per operation and throughput; nothing here is asserted by the test suite.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { verifyAudit } from '../src/audit/audit-verify.ts';
import type { Actor } from '../src/elevation/actor.ts';
import { createCore } from '../test/support/core.ts';
import { openTestDatabase } from '../test/support/db.ts';

const PRINCIPALS = Number(process.env.BENCH_PRINCIPALS ?? 200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 10);

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** Runs `work(i)` for i < count with at most `concurrency` in flight; returns per-call ms. */
async function measure(count: number, concurrency: number, work: (i: number) => Promise<unknown>) {
  const times: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const t = performance.now();
        await work(i);
        times.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  times.sort((a, b) => a - b);
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), perSecond: count / seconds };
}

/** Runs the core bench and prints its table. */
export async function runCoreBench(): Promise<void> {
  const database = await openTestDatabase();
  const core = createCore(database.db, new Date());
  const emails = Array.from({ length: PRINCIPALS }, (_, i) => `user${i}@bench.example`);
  await core.admin.setAdmins(core.cli, ['admin@bench.example']);
  await core.role('direct', { requireJustification: false });
  await core.role('approved', { requireApproval: true, approvers: ['approver@bench.example'] });
  for (const email of emails) {
    await core.eligible(email, 'direct');
    await core.eligible(email, 'approved');
  }
  const people = await Promise.all(emails.map((e) => core.person(e)));
  const approver = await core.person('approver@bench.example');

  const rows: [string, Awaited<ReturnType<typeof measure>>][] = [];
  rows.push([
    'request → active (no approval)',
    await measure(PRINCIPALS, CONCURRENCY, (i) =>
      core.activations.requestActivation({ actor: people[i] as Actor, roleName: 'direct' }),
    ),
  ]);
  const pending: string[] = [];
  rows.push([
    'request (approval needed)',
    await measure(PRINCIPALS, CONCURRENCY, async (i) => {
      const view = await core.activations.requestActivation({
        actor: people[i] as Actor,
        roleName: 'approved',
        justification: 'bench',
      });
      pending[i] = view.activation.id;
    }),
  ]);
  rows.push([
    'approve → active',
    await measure(PRINCIPALS, CONCURRENCY, (i) =>
      core.activations.approve({ actor: approver, activationId: pending[i] as string }),
    ),
  ]);
  core.advance(10);
  rows.push([
    'deactivate → ended',
    await measure(PRINCIPALS, CONCURRENCY, (i) =>
      core.activations.deactivate({ actor: people[i] as Actor, activationId: pending[i] as string }),
    ),
  ]);
  const verifyStart = performance.now();
  const verification = await verifyAudit(database.db);
  const verifyMs = performance.now() - verifyStart;

  console.log(
    `Elevate core bench — ${database.kind}, ${PRINCIPALS} principals, concurrency ${CONCURRENCY}, ` +
      `node ${process.version}, ${os.cpus().length}× ${os.cpus()[0]?.model ?? 'cpu'}`,
  );
  console.log('| operation | p50 ms | p99 ms | per second |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, r] of rows) {
    console.log(`| ${name} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.perSecond.toFixed(0)} |`);
  }
  console.log(`| audit verify (${verification.count} events) | ${verifyMs.toFixed(0)} total | | |`);
  await database.close();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await runCoreBench();
