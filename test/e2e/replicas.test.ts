import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Actor } from '../../src/elevation/actor.ts';
import {
  activationFacts,
  POSTGRES,
  postedTo,
  type Replica,
  type ReplicaSet,
  startReplicaSet,
  WEBHOOK_SECRET_VAR,
  waitUntil,
} from '../support/replicas.ts';

/**
 * Issue 6, several replicas: three real `elevate serve` processes on one PostgreSQL database and
 * 1,000 activations expiring at the same instant. Counted where an operator would look: the
 * target system (revoke events at the webhook), the database (statuses, audit events, outbox),
 * Slack (messages posted to each requester) and `elevate audit verify`.
 *
 * The activations are seeded through the core in this process (as a Slack request makes them,
 * grants included) with a clock of its own, so all 1,000 share one end, already past when the
 * three replicas start together: they must share the revocation without doubling any of it.
 */

const COUNT = 1_000;
const ROLE = 'bulk-db';

let set: ReplicaSet;
const replicas: Replica[] = [];
const slackIdOf = (i: number) => `UBULK${String(i).padStart(4, '0')}`;
const emailOf = (i: number) => `bulk${i}@example.com`;

beforeAll(async () => {
  if (!POSTGRES) return;
  set = await startReplicaSet();
  const eligibility = Array.from(
    { length: COUNT },
    (_, i) => `  - { principal: ${emailOf(i)}, role: ${ROLE} }`,
  ).join('\n');
  // The seeding clock runs behind real time: eligible since before it, expired when the replicas start.
  const seededAt = Date.now();
  set.setClock(new Date(seededAt - 10 * 60_000));
  await set.applyPolicy(`
admins: [ops@example.com]
roles:
  - name: ${ROLE}
    scope: prod/db
    provider: { type: webhook, url: "${set.webhook.url}", secret: env:${WEBHOOK_SECRET_VAR} }
    settings: { minDuration: 1m, maxDuration: 2h, requireJustification: false }
eligibility:
${eligibility}
`);
  const requesters: Actor[] = [];
  for (let i = 0; i < COUNT; i++) requesters.push(await set.person(slackIdOf(i), emailOf(i)));
  // One clock for the whole seeding: every grant runs from the same instant, so one end for all.
  const statuses = await set.activate(ROLE, requesters, {
    at: new Date(seededAt - 2 * 60_000),
    durationMinutes: 1,
  });
  if (statuses.some((s) => s !== 'active')) throw new Error(`seeding left ${statuses.join(', ')}`);
  set.setClock(undefined);
  console.info(`seeded ${COUNT} active activations in ${Date.now() - seededAt} ms`);
}, 300_000);

afterAll(async () => {
  await set?.close();
});

test.skipIf(!POSTGRES)(
  'three replicas revoke 1,000 activations expiring together, each exactly once, and tell each requester once (PostgreSQL only: PGlite is one process by design)',
  async () => {
    // All 1,000 are due when the three replicas start together.
    const startedAt = Date.now();
    replicas.push(...(await Promise.all(['a', 'b', 'c'].map((name) => set.start(name)))));
    // Polled with one cheap count: this process is also the Slack the replicas talk to.
    await waitUntil(
      `all ${COUNT} activations ended and their requesters told`,
      async () => {
        const [row] = await set.database.superuser<{ ended: number; told: number }>(
          "select (select count(*)::int from activations where status = 'ended') as ended, (select count(*)::int from notifications where kind = 'activation_ended' and status = 'sent') as told",
        );
        return row?.ended === COUNT && row.told === COUNT;
      },
      600_000,
      1_000,
    );
    console.info(`all ended and told ${Date.now() - startedAt} ms after the replicas were started`);
    const ended = await activationFacts(set.database, ROLE);
    // Delivered notices may still be on their way to postMessage's answer; wait for Slack itself.
    await waitUntil(
      'every end posted to Slack',
      () => postedTo(set.slack, /has ended/).size >= COUNT,
      30_000,
    );

    // The target system: exactly one revoke per activation, none before its end, no failures.
    const revokes = set.webhook.callsOf('revoke', ROLE);
    expect(revokes).toHaveLength(COUNT);
    expect(new Set(revokes.map((c) => c.activationId)).size).toBe(COUNT);
    expect(set.webhook.callsOf('grant', ROLE)).toHaveLength(COUNT);
    const endOf = new Map(ended.map((f) => [f.id, f.endAt?.getTime() ?? Number.NaN]));
    expect(new Set(endOf.values()).size).toBe(1); // they really expired together
    expect(revokes.filter((c) => !(c.receivedAt >= (endOf.get(c.activationId) ?? Number.NaN)))).toEqual([]);

    // The database: each ended for the right reason, with one expiry and one end in the audit trail.
    for (const f of ended) {
      expect(f, f.email).toMatchObject({ status: 'ended', endReason: 'expired' });
      expect(f.actions, f.email).toEqual({
        'activation.requested': 1,
        'activation.granted': 1,
        'activation.expired': 1,
        'activation.ended': 1,
      });
      expect(f.notices['activation_ended:sent'], f.email).toBe(1);
    }

    // Slack: each requester's DM got exactly one "has ended" message.
    const told = postedTo(set.slack, /has ended/);
    expect(told.size).toBe(COUNT);
    expect([...told.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    for (let i = 0; i < COUNT; i++) expect(told.get(`D${slackIdOf(i)}`), emailOf(i)).toBe(1);

    // Each replica counts its provider calls (/metrics); together they made the 1,000, no more.
    const revokedBy = await Promise.all(
      replicas.map(async (r) => {
        const metrics = await (await fetch(`${r.url}/metrics`)).text();
        const line = /^elevate_provider_calls_total\{[^}]*op="revoke"[^}]*outcome="ok"[^}]*\} (\d+)/m.exec(
          metrics,
        );
        return Number(line?.[1] ?? 0);
      }),
    );
    console.info(`revokes per replica: ${revokedBy.join(', ')}`);
    // (One replica may well take them all: a claim holds up to 1,000 due rows. Replicas contending
    // for rows in small batches is test/integration/batch-expiry.test.ts's case.)
    expect(revokedBy.reduce((a, b) => a + b, 0)).toBe(COUNT);

    const verify = await set.cli('audit', 'verify');
    expect(verify.stderr).toBe('');
    expect(verify).toMatchObject({ code: 0, stdout: expect.stringContaining('audit trail intact') });
    for (const r of replicas) expect(r.output()).not.toMatch(/"level":(50|60)/); // no error logged
  },
  900_000,
);
