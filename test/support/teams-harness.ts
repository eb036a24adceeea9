import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseEnv, openTestDatabase, type TestDatabase } from './db.ts';
import { type CliResult, runElevateCli, runSql } from './elevate-process.ts';
import { type FakeTeams, type PostedMessage, startFakeTeams, type TeamsUser } from './fake-teams.ts';
import { freePort } from './slack-harness.ts';

/**
 * The real `elevate serve` as a child process, with Teams pointed at a local Microsoft cloud
 * (`fake-teams.ts`) through its ordinary variables, and a driver that sends the activities Teams
 * sends: messages, `installationUpdate` / `conversationUpdate`, and invokes (`adaptiveCard/action`,
 * `task/fetch`, `task/submit`), each with a JWT signed by the local key.
 */

const BIN = new URL('../../bin/elevate.js', import.meta.url).pathname;

export interface TeamsAnswer {
  status: number;
  body: unknown;
  /** The id of the activity sent (replies carry it as `replyToId`). */
  activityId?: string;
}

/** An Adaptive Card element or action, loosely typed for reading in tests. */
export type CardJson = Record<string, unknown>;

export interface TeamsElevate {
  url: string;
  teams: FakeTeams;
  output(): string;
  /** Every answer the bot gave to an activity, in order (invoke bodies: cards, dialogs). */
  answers: unknown[];
  /** The personal conversation id of a user (stable, as Teams keeps it). */
  personal(user: TeamsUser): string;
  /** A raw POST to /api/messages; `auth` is the Authorization header (none when undefined). */
  raw(activity: Record<string, unknown>, auth?: string): Promise<TeamsAnswer>;
  /** An activity from `user` in their 1:1 chat with the bot, correctly signed. */
  send(user: TeamsUser, activity: Record<string, unknown>): Promise<TeamsAnswer>;
  install(user: TeamsUser): Promise<TeamsAnswer>;
  /**
   * The bot added to a team whose roster is `members` (its General channel: `conversationId`, or
   * a new one); answers with the channel's conversation id.
   */
  installInTeam(
    members: string[],
    conversationId?: string,
  ): Promise<TeamsAnswer & { conversationId: string }>;
  /** A message from `user` in a channel (an `@Elevate` mention first, as Teams sends it). */
  sayInChannel(user: TeamsUser, conversationId: string, text: string): Promise<TeamsAnswer>;
  say(user: TeamsUser, text: string): Promise<TeamsAnswer>;
  /** A click on an `Action.Execute` (`adaptiveCard/action` invoke), in the 1:1 chat or in a channel. */
  execute(user: TeamsUser, action: CardJson, channelId?: string): Promise<TeamsAnswer>;
  /** A click on a dialog opener (`task/fetch` invoke with the button's data). */
  fetchTask(user: TeamsUser, data: Record<string, unknown>): Promise<TeamsAnswer>;
  /** A dialog submitted (`task/submit` with these values). */
  submitTask(user: TeamsUser, data: Record<string, unknown>): Promise<TeamsAnswer>;
  /** Stops the server (SIGTERM) and keeps its database and the fake tenant; its exit code. */
  pause(): Promise<number | null>;
  /** Starts the server again on the same port, database and tenant, after `pause`. */
  resume(): Promise<void>;
  /** Replaces the policy file (ELEVATE_POLICY_FILE), which the server applies at its next start. */
  writePolicy(policy: string): Promise<void>;
  /** `elevate args…` on the server's database (on PGlite only while paused: the directory is one process's). */
  cli(args: string[]): Promise<CliResult>;
  /** SQL statements, in one transaction, on the server's database (on PGlite only while paused). */
  sql<T>(...queries: string[]): Promise<T[]>;
  stop(): Promise<number | null>;
}

export async function startTeamsElevate(options: {
  policy: string;
  env?: Record<string, string>;
  /** Users to create in the fake tenant before the server starts: key → email (undefined: no email). */
  users: Record<string, string | undefined>;
  /** The port to listen on (a free one by default); known up front when `PUBLIC_URL` must name it. */
  port?: number;
}): Promise<TeamsElevate> {
  const teams = await startFakeTeams();
  for (const [key, email] of Object.entries(options.users)) teams.addUser(key, email);
  const dir = await mkdtemp(join(tmpdir(), 'elevate-teams-e2e-'));
  let database: TestDatabase | undefined;
  let child: ChildProcess | undefined;
  let output = '';
  const cleanup = async () => {
    await database?.close().catch(() => {});
    await teams.close().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  };
  try {
    if (process.env.DATABASE_URL) database = await openTestDatabase();
    const policyFile = join(dir, 'policy.yaml');
    await writeFile(policyFile, options.policy);
    const port = options.port ?? (await freePort());
    const url = `http://127.0.0.1:${port}`;
    const dbEnv = databaseEnv(database, dir);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dir,
      NODE_ENV: 'test',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      TEAMS_CLIENT_ID: teams.clientId,
      TEAMS_CLIENT_SECRET: teams.clientSecret,
      TEAMS_TENANT_ID: teams.tenantId,
      TEAMS_OPENID_METADATA_URL: teams.openIdMetadataUrl,
      TEAMS_LOGIN_URL: teams.url,
      TEAMS_SERVICE_URL: teams.serviceUrl,
      ELEVATE_POLICY_FILE: policyFile,
      ...dbEnv,
      ...options.env,
    };
    const launch = async () => {
      const started = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      started.stdout?.on('data', (chunk) => {
        output += chunk;
      });
      started.stderr?.on('data', (chunk) => {
        output += chunk;
      });
      const deadline = Date.now() + 100_000;
      for (;;) {
        if (started.exitCode !== null) throw new Error(`elevate serve exited with ${started.exitCode}`);
        if (Date.now() > deadline) {
          started.kill('SIGKILL'); // a failed restart leaves nothing running
          throw new Error('elevate serve did not start');
        }
        const ok = await fetch(`${url}/healthz`)
          .then((r) => r.ok)
          .catch(() => false);
        if (ok) return started;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    let running = await launch();
    const gone = () => running.exitCode !== null || running.signalCode !== null;
    /** SIGTERM (SIGKILL after 15 s) and the exit code; the server's data stays. */
    const halt = async () => {
      if (gone()) return running.exitCode;
      const exited = new Promise<number | null>((resolve) => running.once('exit', (code) => resolve(code)));
      running.kill('SIGTERM');
      const timer = setTimeout(() => running.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    };

    const personal = (user: TeamsUser) => `a:personal-${user.aadObjectId}`;
    const answers: unknown[] = [];
    const raw = async (activity: Record<string, unknown>, auth?: string): Promise<TeamsAnswer> => {
      const response = await fetch(`${url}/api/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
        body: JSON.stringify(activity),
      });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON
      }
      if (response.ok && body !== undefined) answers.push(body);
      return { status: response.status, body };
    };
    const envelope = (user: TeamsUser, conversation: Record<string, unknown>) => ({
      id: `f:${randomBytes(6).toString('hex')}`,
      channelId: 'msteams',
      serviceUrl: teams.serviceUrl,
      timestamp: new Date().toISOString(),
      from: { id: user.id, name: user.name, aadObjectId: user.aadObjectId },
      recipient: { id: `28:${teams.clientId}`, name: 'Elevate' },
      conversation: { tenantId: teams.tenantId, ...conversation },
      channelData: { tenant: { id: teams.tenantId } },
    });
    const signed = async (activity: Record<string, unknown>) => ({
      ...(await raw(activity, `Bearer ${teams.sign()}`)),
      activityId: String(activity.id),
    });
    const server: TeamsElevate = {
      url,
      teams,
      output: () => output,
      answers,
      personal,
      raw,
      send(user, activity) {
        return signed({
          ...envelope(user, { id: personal(user), conversationType: 'personal' }),
          ...activity,
        });
      },
      install(user) {
        return server.send(user, { type: 'installationUpdate', action: 'add' });
      },
      async installInTeam(members, given) {
        const conversationId = given ?? `19:team-${randomBytes(4).toString('hex')}@thread.tacv2`;
        teams.rosters.set(conversationId, members);
        const first = teams.users.get(members[0] ?? '');
        if (!first) throw new Error('a team needs members');
        const answer = await signed({
          ...envelope(first, { id: conversationId, conversationType: 'channel', isGroup: true }),
          type: 'conversationUpdate',
          membersAdded: [{ id: `28:${teams.clientId}` }],
          channelData: { tenant: { id: teams.tenantId }, team: { id: conversationId } },
        });
        return { ...answer, conversationId };
      },
      sayInChannel(user, conversationId, text) {
        return signed({
          ...envelope(user, { id: conversationId, conversationType: 'channel', isGroup: true }),
          type: 'message',
          text: `<at>Elevate</at> ${text}`,
          entities: [
            {
              type: 'mention',
              text: '<at>Elevate</at>',
              mentioned: { id: `28:${teams.clientId}`, name: 'Elevate' },
            },
          ],
          channelData: { tenant: { id: teams.tenantId }, team: { id: conversationId } },
        });
      },
      say(user, text) {
        return server.send(user, { type: 'message', text });
      },
      execute(user, action, channelId) {
        const invoke = {
          type: 'invoke',
          name: 'adaptiveCard/action',
          value: {
            action: { type: 'Action.Execute', verb: action.verb, data: action.data ?? {} },
            trigger: 'manual',
          },
        };
        if (!channelId) return server.send(user, invoke);
        return signed({
          ...envelope(user, { id: channelId, conversationType: 'channel', isGroup: true }),
          ...invoke,
          channelData: { tenant: { id: teams.tenantId }, team: { id: channelId } },
        });
      },
      fetchTask(user, data) {
        return server.send(user, {
          type: 'invoke',
          name: 'task/fetch',
          value: { data, context: { theme: 'default' } },
        });
      },
      submitTask(user, data) {
        return server.send(user, {
          type: 'invoke',
          name: 'task/submit',
          value: { data, context: { theme: 'default' } },
        });
      },
      pause: halt,
      async resume() {
        if (!gone()) throw new Error('the server is running: pause it first');
        running = await launch();
      },
      writePolicy: (policy) => writeFile(policyFile, policy),
      cli: (args) => runElevateCli({ ...dbEnv, LOG_LEVEL: 'warn' }, dir, args),
      sql: (...queries) => runSql(dbEnv, ...queries),
      async stop() {
        const code = await halt();
        await cleanup();
        return code;
      },
    };
    return server;
  } catch (error) {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await cleanup();
    if (output) (error as Error).message += `\n--- server output ---\n${output}`;
    throw error;
  }
}

// ---- reading cards ----

/** The Adaptive Card of a posted message (or of an invoke answer / dialog). */
export function cardOf(source: PostedMessage | Record<string, unknown> | unknown): CardJson {
  const s = source as Record<string, unknown>;
  if (s && 'activity' in s) return cardOf(s.activity);
  if (s && Array.isArray(s.attachments)) return (s.attachments[0] as { content: CardJson }).content;
  if (s && s.type === 'application/vnd.microsoft.card.adaptive') return s.value as CardJson;
  const task = (s?.task as { value?: { card?: { content: CardJson } } } | undefined)?.value?.card;
  if (task) return task.content;
  throw new Error(`no card in ${JSON.stringify(source).slice(0, 300)}`);
}

/** Every element and action of a card, depth first. */
export function walk(node: unknown, out: CardJson[] = []): CardJson[] {
  if (Array.isArray(node)) for (const n of node) walk(n, out);
  else if (node && typeof node === 'object') {
    const o = node as CardJson;
    if (typeof o.type === 'string') out.push(o);
    for (const key of ['body', 'items', 'actions', 'columns', 'facts']) if (key in o) walk(o[key], out);
  }
  return out;
}

/** All text a person reads on a card (text blocks, facts, inputs' labels). */
export function textOf(card: CardJson): string {
  const parts: string[] = [];
  for (const el of walk(card)) {
    if (el.type === 'TextBlock') parts.push(String(el.text));
    if (el.type === 'FactSet')
      for (const f of el.facts as { title: string; value: string }[]) parts.push(`${f.title}: ${f.value}`);
  }
  return parts.join('\n');
}

/** The buttons of a card, by title. */
export function buttons(card: CardJson): CardJson[] {
  return walk(card).filter((el) => String(el.type).startsWith('Action.'));
}

/** The button titled `title` (and carrying `value`, when given). */
export function button(card: CardJson, title: string, value?: string): CardJson {
  const found = buttons(card).find(
    (b) =>
      b.title === title &&
      (value === undefined || (b.data as { value?: string } | undefined)?.value === value),
  );
  if (!found)
    throw new Error(
      `no button "${title}" on card: ${buttons(card)
        .map((b) => b.title)
        .join(', ')}`,
    );
  return found;
}

/** The inputs of a dialog card with their current values, by id. */
export function inputsOf(card: CardJson): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const el of walk(card))
    if (String(el.type).startsWith('Input.')) values[String(el.id)] = el.value ?? '';
  return values;
}

/** What a dialog's submit button sends: its data merged with the inputs' values and `fields`. */
export function submission(card: CardJson, fields: Record<string, unknown> = {}): Record<string, unknown> {
  const submit = (card.actions as CardJson[] | undefined)?.find((a) => a.type === 'Action.Submit');
  return { ...inputsOf(card), ...fields, ...((submit?.data as Record<string, unknown>) ?? {}) };
}

/** Waits until `check` returns something truthy (the outbox runs every 2 s). */
export async function eventually<T>(check: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}
