import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config.ts';
import { type Actor, principalActor, SYSTEM } from '../../src/elevation/actor.ts';
import { ensurePrincipal } from '../../src/elevation/principal-repository.ts';
import { createServices, type Services } from '../../src/main.ts';
import { openTestDatabase, type TestDatabase } from './db.ts';
import { freePort } from './slack-harness.ts';
import { type SlackWorkspace, startSlackWorkspace } from './slack-workspace.ts';
import { startWebhookTarget, type WebhookTarget } from './webhook-target.ts';

/**
 * Several real `elevate serve` processes (replicas) on one PostgreSQL database, sharing one local
 * Slack and one webhook target (the grant provider's far end), for the process-level properties:
 * replicas sharing the loop's work, `kill -9` and restart, SIGTERM. The test process holds the
 * core services on the same database, to seed activations as the app writes them (with a clock
 * of its own), and runs the CLI against it.
 */

const BIN = new URL('../../bin/elevate.js', import.meta.url).pathname;
/** The variable the webhook roles name for their signing secret (`secret: env:…`). */
export const WEBHOOK_SECRET_VAR = 'ELEVATE_E2E_WEBHOOK_SECRET';

/** Replica tests need a server any number of processes can share; PGlite is one process's database. */
export const POSTGRES = Boolean(process.env.DATABASE_URL);

/** One `elevate serve` child process. */
export interface Replica {
  name: string;
  url: string;
  /** Its stdout and stderr so far (JSON log lines). */
  output(): string;
  /** Resolves when it exits, with its exit code (null when a signal ended it) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal: SIGTERM to stop it, SIGKILL to crash it. */
  kill(signal: NodeJS.Signals): void;
}

export interface ReplicaSet {
  database: TestDatabase;
  slack: SlackWorkspace;
  webhook: WebhookTarget;
  /** The core on the same database, as `main.ts` wires it, with the set's clock. */
  services: Services;
  /** The test process's clock: `now` when set, else real time. */
  setClock(now: Date | undefined): void;
  /** A Slack user with this email, whose principal may act (request activations). */
  person(slackId: string, email: string): Promise<Actor>;
  /** Applies a policy file's YAML through the core (as `elevate apply` does). */
  applyPolicy(yaml: string): Promise<void>;
  /**
   * Each person requests `role` through the core (a few at a time), with the test clock at `at`:
   * one instant for all, so they share one start and one end. Resolves with the activations' status.
   */
  activate(
    role: string,
    people: Actor[],
    ask: { at: Date; durationMinutes: number; startAt?: Date },
  ): Promise<string[]>;
  /** Starts a replica and waits until it answers /healthz. */
  start(name: string, env?: Record<string, string>): Promise<Replica>;
  /** Runs the `elevate` CLI on the database; resolves with its exit code and output. */
  cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The last lines each replica started so far wrote, to print when a test fails. */
  logs(lines?: number): string;
  /** Kills every replica still running (after a failed test, so the next one starts clean). */
  killAll(): Promise<void>;
  /** Kills what still runs and drops the database. */
  close(): Promise<void>;
}

/** Waits until `probe` returns something truthy, polling every `everyMs`; fails after `timeoutMs`, naming `what`. */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | false | null | undefined> | T | false | null | undefined,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** What an operator can see of one activation: its row, its audit events and its notices. */
export interface ActivationFacts {
  id: string;
  email: string;
  status: string;
  endAt: Date | null;
  endReason: string | null;
  /** Audit events about it, counted by action (`activation.ended`: 1). */
  actions: Record<string, number>;
  /** Outbox rows about it, counted by `kind:status` (`activation_ended:sent`: 1). */
  notices: Record<string, number>;
}

/** Every activation of `role` (a name of [a-z0-9-], inlined) with its audit events and notices. */
export async function activationFacts(database: TestDatabase, role: string): Promise<ActivationFacts[]> {
  const ofRole = `select a.id from activations a join roles r on r.id = a.role_id where r.name = '${role}' and a.kind = 'activation'`;
  const rows = await database.superuser<{
    id: string;
    email: string;
    status: string;
    end_at: Date | null;
    end_reason: string | null;
  }>(
    `select a.id, p.email, a.status, a.end_at, a.end_reason from activations a join principals p on p.id = a.principal_id where a.id in (${ofRole})`,
  );
  const events = await database.superuser<{ subject_id: string; action: string; n: number }>(
    `select subject_id, action, count(*)::int as n from audit_events where subject_id in (select id::text from (${ofRole}) s) group by 1, 2`,
  );
  const notices = await database.superuser<{
    activation_id: string;
    kind: string;
    status: string;
    n: number;
  }>(
    `select activation_id, kind, status, count(*)::int as n from notifications where activation_id in (${ofRole}) group by 1, 2, 3`,
  );
  return rows.map((row) => ({
    id: row.id,
    email: row.email,
    status: row.status,
    endAt: row.end_at && new Date(row.end_at),
    endReason: row.end_reason,
    actions: Object.fromEntries(events.filter((e) => e.subject_id === row.id).map((e) => [e.action, e.n])),
    notices: Object.fromEntries(
      notices.filter((n) => n.activation_id === row.id).map((n) => [`${n.kind}:${n.status}`, n.n]),
    ),
  }));
}

/** Messages posted (chat.postMessage) into each Slack DM whose text matches `pattern`, counted per channel. */
export function postedTo(slack: SlackWorkspace, pattern: RegExp): Map<string, number> {
  const counts = new Map<string, number>();
  for (const call of slack.api.callsTo('chat.postMessage')) {
    if (call.status !== 200 || call.error || !pattern.test(String(call.args.text ?? ''))) continue;
    const channel = String(call.args.channel);
    counts.set(channel, (counts.get(channel) ?? 0) + 1);
  }
  return counts;
}

/** A fresh database, Slack and webhook target; `env` goes to every replica. */
export async function startReplicaSet(env: Record<string, string> = {}): Promise<ReplicaSet> {
  if (!POSTGRES) throw new Error('replica tests need DATABASE_URL (PostgreSQL)');
  const secret = randomBytes(32).toString('hex');
  const signingSecret = randomBytes(16).toString('hex');
  const dir = await mkdtemp(join(tmpdir(), 'elevate-replicas-'));
  const database = await openTestDatabase();
  const slack = await startSlackWorkspace();
  const webhook = await startWebhookTarget(secret);
  const children: ChildProcess[] = [];
  const started: Replica[] = [];
  let now: Date | undefined;
  const clock = () => now ?? new Date();
  const databaseUrl = database.url ?? '';
  const services = createServices({
    config: loadConfig({ DATABASE_URL: databaseUrl }),
    db: database.db,
    clock,
    env: { [WEBHOOK_SECRET_VAR]: secret },
  });
  const baseEnv = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    [WEBHOOK_SECRET_VAR]: secret,
  };

  return {
    database,
    slack,
    webhook,
    services,
    setClock(at) {
      now = at;
    },
    async person(slackId, email) {
      slack.addUser(slackId, email);
      return principalActor(await ensurePrincipal(database.db, email));
    },
    async applyPolicy(yaml) {
      const result = await services.policy.apply({ actor: SYSTEM, text: yaml, fileName: 'policy.yaml' });
      if (!result.ok) throw new Error(`policy refused: ${result.problems.join('; ')}`);
    },
    async activate(role, people, ask) {
      now = ask.at;
      const statuses: string[] = [];
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < people.length; i = next++) {
          const view = await services.activations.requestActivation({
            actor: people[i] as Actor,
            roleName: role,
            durationMinutes: ask.durationMinutes,
            startAt: ask.startAt,
          });
          statuses.push(view.activation.status);
        }
      };
      try {
        await Promise.all(Array.from({ length: 8 }, worker));
      } finally {
        now = undefined;
      }
      return statuses;
    },
    async start(name, extra = {}) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      let output = '';
      const child = spawn(process.execPath, [BIN, 'serve'], {
        env: {
          ...baseEnv,
          PORT: String(port),
          LOG_LEVEL: 'info',
          SLACK_BOT_TOKEN: slack.api.token,
          SLACK_SIGNING_SECRET: signingSecret,
          SLACK_API_URL: slack.api.url,
          ...env,
          ...extra,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      child.stdout?.on('data', (chunk) => {
        output += chunk;
      });
      child.stderr?.on('data', (chunk) => {
        output += chunk;
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      await waitUntil(
        `${name} to answer /healthz`,
        async () => {
          if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${output}`);
          return fetch(`${url}/healthz`).then(
            (response) => response.ok,
            () => false,
          );
        },
        60_000,
      );
      const replica: Replica = {
        name,
        url,
        output: () => output,
        exited,
        kill: (signal) => child.kill(signal),
      };
      started.push(replica);
      return replica;
    },
    async cli(...args) {
      try {
        const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], {
          env: baseEnv,
        });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const e = error as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    },
    logs(lines = 40) {
      return started
        .map((r) => `--- ${r.name} ---\n${r.output().trimEnd().split('\n').slice(-lines).join('\n')}`)
        .join('\n');
    },
    async killAll() {
      const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
      for (const child of running) child.kill('SIGKILL');
      await Promise.all(running.map((child) => once(child, 'exit')));
    },
    async close() {
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await services.providers.close().catch(() => {});
      await webhook.close().catch(() => {});
      await slack.close().catch(() => {});
      await database.close().catch(() => {});
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
}
