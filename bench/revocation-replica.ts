/**
 * One replica of the revocation bench (`revocation.ts` forks it): the real loop — the services
 * `elevate serve` builds, its lifecycle jobs on their schedule — on the database the environment
 * names (DATABASE_URL, else PGlite in ELEVATE_DATA_DIR). It records when each `none` revoke
 * returned, through the same provider-call observer the server uses, and talks to the bench over
 * IPC: `ready`, `progress`, then on `stop` the samples and its peak RSS.
 * Replica 0 also sets the activations' end (`arm` with `setEnds`), since PGlite admits only the
 * process holding it.
 */
import { performance } from 'node:perf_hooks';
import { systemClock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/client.ts';
import { sql } from '../src/db/drizzle.ts';
import { createReminderService } from '../src/elevation/reminder-service.ts';
import { lifecycleJobs } from '../src/jobs/lifecycle-jobs.ts';
import { SCHEDULES, startScheduler } from '../src/jobs/scheduler.ts';
import { createLogger } from '../src/log.ts';
import { createServices, providerCallObserver } from '../src/main.ts';
import { createMetrics } from '../src/metrics.ts';

/** Messages from the bench. */
export type ToReplica =
  | { type: 'arm'; firstDueMs: number; spreadMs: number; roleName: string; setEnds: boolean }
  | { type: 'stop' };
/** Messages to the bench. */
export type FromReplica =
  | { type: 'ready' }
  | { type: 'armed'; atMs: number }
  | { type: 'progress'; revoked: number }
  | {
      type: 'done';
      ids: string[];
      returnedMs: number[];
      maxRssKb: number;
      burstRssMb: number;
      cpuMs: number;
    };

const send = (message: FromReplica, then: () => void = () => {}) => process.send?.(message, then);
const config = loadConfig(process.env);
const log = createLogger(config.LOG_LEVEL);
const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.ELEVATE_DATA_DIR });
const observe = providerCallObserver(log, createMetrics());
const ids: string[] = [];
const returnedMs: number[] = [];
const services = createServices({
  config,
  db: database.db,
  clock: systemClock,
  observe: (call) => {
    if (call.op === 'revoke' && call.outcome === 'ok') {
      ids.push(call.activationId);
      returnedMs.push(performance.timeOrigin + performance.now());
    }
    observe(call);
  },
});
const reminders = createReminderService({
  db: database.db,
  clock: systemClock,
  settings: {
    expiryWarningMinutes: config.ELEVATE_EXPIRY_WARNING,
    reminderAfterMinutes: config.ELEVATE_REMINDER_AFTER,
    maxReminders: config.ELEVATE_REMINDER_MAX,
  },
});
const loop = startScheduler(
  lifecycleJobs(services.activations, reminders).map((job) => ({ job, schedule: SCHEDULES.lifecycle })),
  log,
);
// Peak RSS counts start-up too, when loading the modules leaves garbage (on Node 24 drizzle's
// package.json alone costs ~150 MB until collected); the RSS sampled from arming on is the burst's.
let burstRssMb = 0;
let sampling = false;
let cpuAtArm = process.cpuUsage();
const progress = setInterval(() => {
  if (sampling) burstRssMb = Math.max(burstRssMb, process.memoryUsage.rss() / 1_048_576);
  send({ type: 'progress', revoked: ids.length });
}, 100);

process.on('message', async (message: ToReplica) => {
  if (message.type === 'arm') {
    sampling = true;
    cpuAtArm = process.cpuUsage();
    if (!message.setEnds) return;
    // The seeded activations end one after another across `spreadMs`, from `firstDueMs` on; each
    // looks as if granted for 60 minutes, and warned before its end as the loop would have.
    await database.db.execute(sql`
      with ordered as (
        select a.id, (row_number() over (order by a.id) - 1)::float8 / count(*) over () as f
        from activations a join roles r on r.id = a.role_id
        where r.name = ${message.roleName} and a.status = 'active'
      ), timed as (
        select id, to_timestamp((${message.firstDueMs}::float8 + f * ${message.spreadMs}) / 1000) as end_at from ordered
      )
      update activations a
      set end_at = t.end_at, next_attempt_at = t.end_at,
          start_at = t.end_at - interval '60 minutes', activated_at = t.end_at - interval '60 minutes',
          created_at = t.end_at - interval '61 minutes', updated_at = t.end_at - interval '60 minutes',
          expiry_warned_at = t.end_at - interval '10 minutes'
      from timed t where a.id = t.id`);
    send({ type: 'armed', atMs: Date.now() });
    return;
  }
  clearInterval(progress);
  await loop.stop();
  const maxRssKb = process.resourceUsage().maxRSS;
  const cpu = process.cpuUsage(cpuAtArm);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  await services.providers.close();
  await database.close();
  send({ type: 'done', ids, returnedMs, maxRssKb, burstRssMb, cpuMs }, () => process.disconnect());
});
send({ type: 'ready' });
