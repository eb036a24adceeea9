/**
 * The revocation bench (`npm run bench -- revocation`): how far behind `expires_at` the loop
 * revokes when thousands of activations end in the same second.
 *
 * For each size (BENCH_REVOKE_SIZES, default 10,000 and 100,000) and replica count
 * (BENCH_REVOKE_REPLICAS, default 1 and 3 on PostgreSQL, 1 on PGlite, which one process holds):
 * a fresh database gets one admin, one role on the `none` provider and that many principals, each
 * eligible and with an active activation, written with bulk SQL as the app would have left them
 * (granted an hour ago, warned before the end; their earlier audit events are left out). The
 * replicas start (`revocation-replica.ts`, one process each, each with its own connection pool:
 * the real services and loop), replica 0 moves every end to one second (BENCH_REVOKE_SPREAD_MS)
 * a few seconds ahead, spread evenly across it, and the bench waits until every activation was
 * revoked. Lag per activation is the time the `none` provider's revoke returned minus its end.
 * Afterwards the database must show every activation ended once, audited once, its requester
 * told once, and the audit chain must verify.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { verifyAudit } from '../src/audit/audit-verify.ts';
import { type Database, openDatabase, rowsOf } from '../src/db/client.ts';
import { sql } from '../src/db/drizzle.ts';
import { cliActor } from '../src/elevation/actor.ts';
import { createAdminService } from '../src/elevation/admin-service.ts';
import { createProviderRegistry } from '../src/grants/registry.ts';
import { openTestDatabase } from '../test/support/db.ts';
import type { FromReplica, ToReplica } from './revocation-replica.ts';
import { START_FLAGS } from './start-flags.ts';
import { ms, summary } from './stats.ts';

const POSTGRES = process.env.DATABASE_URL;
const SIZES = (process.env.BENCH_REVOKE_SIZES ?? '10000,100000').split(',').map(Number);
const REPLICAS = (process.env.BENCH_REVOKE_REPLICAS ?? (POSTGRES ? '1,3' : '1')).split(',').map(Number);
const SPREAD_MS = Number(process.env.BENCH_REVOKE_SPREAD_MS ?? 1_000);
const ROLE = 'bench-expiry';
const REPLICA = new URL('./revocation-replica.ts', import.meta.url).pathname;
interface Result {
  size: number;
  replicas: number;
  lag: ReturnType<typeof summary>;
  /** Revocations per second, from the first revoke returned to the last. */
  perSecond: number;
  /** From the first end to the last revoke returned, and to the last row ended. */
  clearedMs: number;
  endedMs: number;
  /** Each replica's peak RSS over its life (start-up included), and sampled during the burst. */
  rssMb: number[];
  burstRssMb: number[];
  /** CPU the replicas used from arming to the end, all together: the work, whatever else runs on the machine. */
  cpuMs: number;
  /** CPU the PostgreSQL backends serving the replicas used over the same time (NaN on PGlite, which runs inside the replica). */
  serverCpuMs: number;
  /** What the database showed afterwards; empty when all was as it must be. */
  problems: string[];
  armLateMs: number;
}

/** Runs the revocation bench and prints its table. */
export async function runRevocationBench(): Promise<void> {
  const kind = POSTGRES ? 'PostgreSQL' : 'PGlite';
  console.log(
    `Elevate revocation bench — ${kind}, spread ${SPREAD_MS} ms, node ${process.version}, ` +
      `${os.cpus().length}× ${os.cpus()[0]?.model ?? 'cpu'}, replicas run with ${START_FLAGS.join(' ') || 'no V8 flags'} (npm start's)`,
  );
  console.log(
    '| database | activations | replicas | lag p50 / p99 / max ms | revocations/s | last revoked / ended after s | CPU s replicas / PostgreSQL | peak RSS MB (burst; whole run) | checks |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const size of SIZES) {
    for (const replicas of REPLICAS) {
      if (!POSTGRES && replicas > 1) continue; // PGlite belongs to one process
      const r = await runOnce(size, replicas);
      console.log(
        `| ${kind} | ${size.toLocaleString('en')} | ${replicas} | ${ms(r.lag.p50)} / ${ms(r.lag.p99)} / ${ms(r.lag.max)} | ` +
          `${Math.round(r.perSecond).toLocaleString('en')} | ${(r.clearedMs / 1000).toFixed(2)} / ${(r.endedMs / 1000).toFixed(2)} | ${(r.cpuMs / 1000).toFixed(1)} / ${Number.isNaN(r.serverCpuMs) ? '—' : (r.serverCpuMs / 1000).toFixed(1)} | ` +
          `${r.burstRssMb.map((m) => m.toFixed(0)).join(', ')}; ${r.rssMb.map((m) => m.toFixed(0)).join(', ')} | ${r.problems.join('; ') || 'ok'}${r.armLateMs > 0 ? `; armed ${r.armLateMs} ms late` : ''} |`,
      );
    }
  }
}

/** A scratch database: a fresh one on the server, or PGlite in a temporary directory. */
async function scratch(): Promise<{
  open(): Promise<Database>;
  env: NodeJS.ProcessEnv;
  drop(): Promise<void>;
}> {
  if (POSTGRES) {
    const database = await openTestDatabase();
    return {
      open: async () => database,
      env: { DATABASE_URL: database.url },
      drop: () => database.close(),
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'elevate-bench-'));
  return {
    open: async () => {
      const database = await openDatabase({ dataDir: dir });
      await database.migrate();
      return database;
    },
    env: { ELEVATE_DATA_DIR: dir },
    drop: () => rm(dir, { recursive: true, force: true }),
  };
}

/** One admin, the role, `size` eligible principals with an active activation each (ends far ahead until armed). */
async function seed(database: Database, size: number): Promise<void> {
  const { db } = database;
  const admin = createAdminService({
    db,
    providers: createProviderRegistry({ env: {} }),
    clock: () => new Date(),
    settle: async () => {
      throw new Error('nothing to settle while seeding');
    },
  });
  const cli = cliActor('bench');
  await admin.setAdmins(cli, ['admin@bench.example']);
  await admin.saveRole(cli, {
    name: ROLE,
    provider: { type: 'none' },
    settings: { requireJustification: false, maxDuration: 480 },
  });
  await db.execute(sql`
    insert into principals (email)
    select 'user' || i || '@bench.example' from generate_series(1, ${size}) i`);
  await db.execute(sql`
    insert into eligibilities (principal_id, role_id, start_at, created_by)
    select p.id, r.id, now() - interval '30 days', 'cli:bench'
    from principals p, roles r where r.name = ${ROLE} and p.email like 'user%@bench.example'`);
  await db.execute(sql`
    insert into activations (kind, principal_id, role_id, status, duration_minutes, start_at, end_at,
      justification, requested_by, activated_at, next_attempt_at, created_at, updated_at)
    select 'activation', p.id, r.id, 'active', 60, now(), now() + interval '1 day',
      '', p.email, now(), now() + interval '1 day', now(), now()
    from principals p, roles r where r.name = ${ROLE} and p.email like 'user%@bench.example'`);
  await db.execute(sql`analyze`);
}

async function runOnce(size: number, replicaCount: number): Promise<Result> {
  const db = await scratch();
  const seeded = await db.open();
  await seed(seeded, size);
  if (!POSTGRES) await seeded.close();

  const replicas = Array.from({ length: replicaCount }, () => startReplica(db.env));
  await Promise.all(replicas.map((r) => r.next('ready')));
  // Far enough ahead for the arming update to land first (up to 0.1 ms a row on a busy machine).
  const firstDueMs = Date.now() + 3_000 + size * 0.1;
  const first = replicas[0] as Replica;
  for (const r of replicas) {
    r.send({ type: 'arm', firstDueMs, spreadMs: SPREAD_MS, roleName: ROLE, setEnds: r === first });
  }
  const armed = (await first.next('armed')) as { atMs: number };
  const serverCpuBefore = await serverCpu(seeded);
  const deadline = firstDueMs + SPREAD_MS + Math.max(60_000, size * 2);
  while (replicas.reduce((sum, r) => sum + r.revoked, 0) < size && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // The replicas' backends go when their pools close: sample the server's CPU once every row ended.
  while (POSTGRES && Date.now() < deadline && (await endedCount(seeded)) < size) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const serverCpuMs = POSTGRES ? cpuSince(serverCpuBefore, await serverCpu(seeded)) : Number.NaN;
  for (const r of replicas) r.send({ type: 'stop' });
  const done = (await Promise.all(replicas.map((r) => r.next('done')))) as Extract<
    FromReplica,
    { type: 'done' }
  >[];

  const database = POSTGRES ? seeded : await db.open();
  const ends = new Map(
    rowsOf<{ id: string; end_ms: number }>(
      await database.db.execute(sql`
        select a.id, extract(epoch from a.end_at) * 1000 as end_ms
        from activations a join roles r on r.id = a.role_id where r.name = ${ROLE}`),
    ).map((row) => [row.id, Number(row.end_ms)]),
  );
  const returned = new Map<string, number>();
  let duplicates = 0;
  for (const d of done) {
    d.ids.forEach((id, i) => {
      if (returned.has(id)) duplicates++;
      else returned.set(id, d.returnedMs[i] as number);
    });
  }
  const lags = [...returned].map(([id, at]) => at - (ends.get(id) ?? Number.NaN));
  const times = [...returned.values()];
  const firstReturn = Math.min(...times);
  const lastReturn = Math.max(...times);
  const problems = await check(database, size);
  if (duplicates > 0) problems.push(`${duplicates} revoked twice`);
  if (returned.size < size) problems.push(`${size - returned.size} not revoked`);
  const [ended] = rowsOf<{ last: number }>(
    await database.db.execute(sql`select extract(epoch from max(ended_at)) * 1000 as last from activations`),
  );
  if (!POSTGRES) await database.close();
  await db.drop();
  return {
    size,
    replicas: replicaCount,
    lag: summary(lags),
    perSecond: returned.size / ((lastReturn - firstReturn) / 1000),
    clearedMs: lastReturn - firstDueMs,
    endedMs: Number(ended?.last) - firstDueMs,
    rssMb: done.map((d) => d.maxRssKb / 1024),
    burstRssMb: done.map((d) => d.burstRssMb),
    cpuMs: done.reduce((sum, d) => sum + d.cpuMs, 0),
    serverCpuMs,
    problems,
    armLateMs: Math.max(0, Math.round(armed.atMs - firstDueMs)),
  };
}

/** Every activation ended once, audited once as expired and once as ended, its requester told once; the chain verifies. */
async function check(database: Database, size: number): Promise<string[]> {
  const count = async (query: ReturnType<typeof sql>) =>
    Number(rowsOf<{ n: number }>(await database.db.execute(query))[0]?.n);
  const problems: string[] = [];
  const ended = await count(sql`select count(*) as n from activations where status = 'ended'`);
  if (ended !== size) problems.push(`${ended} ended`);
  for (const action of ['activation.expired', 'activation.ended']) {
    const events = await count(
      sql`select count(*) as n from (select distinct subject_id from audit_events where action = ${action}) s`,
    );
    const all = await count(sql`select count(*) as n from audit_events where action = ${action}`);
    if (events !== size || all !== size) problems.push(`${all} ${action} events for ${events} activations`);
  }
  const told = await count(sql`select count(*) as n from notifications where kind = 'activation_ended'`);
  if (told !== size) problems.push(`${told} requesters told`);
  const chain = await verifyAudit(database.db);
  if (!chain.ok) problems.push(`audit chain broken: ${chain.reason}`);
  return problems;
}

interface Replica {
  revoked: number;
  send(message: ToReplica): void;
  next(type: FromReplica['type']): Promise<FromReplica>;
}

/** Forks one replica; its log lines are read (and warnings and errors shown), never kept. */
function startReplica(env: NodeJS.ProcessEnv): Replica {
  const { DATABASE_URL: _, ...inherited } = process.env;
  const child: ChildProcess = fork(REPLICA, {
    execArgv: [...process.execArgv, ...START_FLAGS],
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const waiting = new Map<string, (message: FromReplica) => void>();
  const early = new Map<string, FromReplica>();
  const replica: Replica = {
    revoked: 0,
    send: (message) => child.send(message),
    next: (type) =>
      new Promise((resolve, reject) => {
        const got = early.get(type);
        if (got) return resolve(got);
        waiting.set(type, resolve);
        // The IPC channel delivers in order, so a channel closed before `type` came means it never will.
        child.once('disconnect', () => setImmediate(() => reject(new Error(`replica ended before ${type}`))));
      }),
  };
  child.on('message', (message: FromReplica) => {
    if (message.type === 'progress') replica.revoked = message.revoked;
    const resolve = waiting.get(message.type);
    if (resolve) resolve(message);
    else early.set(message.type, message);
  });
  if (child.stdout) {
    let shown = 0;
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (/"level":"(warn|error|fatal)"/.test(line) && shown++ < 5) console.error(`replica: ${line}`);
    });
  }
  return replica;
}

/** CPU (ms) of each PostgreSQL backend connected to the bench's database, by pid, from /proc (same machine). */
async function serverCpu(database: Database): Promise<Map<number, number>> {
  const cpu = new Map<number, number>();
  if (!POSTGRES) return cpu;
  const backends = rowsOf<{ pid: number }>(
    await database.db.execute(sql`select pid from pg_stat_activity where datname = current_database()`),
  );
  for (const { pid } of backends) {
    try {
      // Fields 14 and 15 of /proc/<pid>/stat: user and system time in clock ticks (100 a second).
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      cpu.set(pid, (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // A backend that ended in between, or a server on another machine: not counted.
    }
  }
  return cpu;
}

/** CPU used between two samples; backends that appeared in between count whole. */
function cpuSince(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

async function endedCount(database: Database): Promise<number> {
  const [row] = rowsOf<{ n: number }>(
    await database.db.execute(sql`select count(*) as n from activations where status = 'ended'`),
  );
  return Number(row?.n);
}
