import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseEnv, openTestDatabase, type TestDatabase } from './db.ts';
import { type CliResult, runElevateCli, runSql } from './elevate-process.ts';
import {
  type Block,
  type SlackMessage,
  type SlackView,
  type SlackWorkspace,
  startSlackWorkspace,
} from './slack-workspace.ts';

/**
 * The real `elevate serve` as a child process, wired to a local Slack (`slack-workspace.ts`), and
 * a client that sends what Slack sends: form-encoded slash commands, `payload=` interactions and
 * JSON events, each signed as Slack signs them (`v0=` + hex HMAC-SHA256 of
 * `v0:{timestamp}:{raw body}` under the signing secret).
 *
 * Form bodies go out as a string with the exact content-type `application/x-www-form-urlencoded`
 * (no charset): that is what Slack sends, and Bolt refuses anything else.
 */

const BIN = new URL('../../bin/elevate.js', import.meta.url).pathname;
const FORM = 'application/x-www-form-urlencoded';
export const SLASH_COMMAND = '/elevate';

export interface SlackResponse {
  status: number;
  /** The parsed JSON answer, the text when it is not JSON, or undefined when empty. */
  body: unknown;
  text: string;
}

export interface ElevateOptions {
  /** The policy file's YAML (admins, roles, eligibility). */
  policy: string;
  /** More environment for the server (provider secrets). */
  env?: Record<string, string>;
  /** How long start-up may take (a new PGlite data directory is created and migrated first). */
  startTimeoutMs?: number;
  /** The port to serve on, when the caller must know it first (PUBLIC_URL); a free one otherwise. */
  port?: number;
  /** Slack users (id → email) in the workspace before the server starts (and sends its first notices). */
  users?: Record<string, string>;
  /** Node or V8 flags for the server process (the bench gives it `npm start`'s). */
  nodeFlags?: string[];
}

export interface ElevateServer {
  url: string;
  slack: SlackWorkspace;
  signingSecret: string;
  /** stdout and stderr of the server so far (JSON log lines). */
  output(): string;
  /** `v0=` signature for a body at a timestamp (unix seconds), under `secret` (default: the right one). */
  sign(body: string, timestamp: number, secret?: string): string;
  /** A raw POST to /slack/events: nothing added, for the security tests. */
  post(body: string, headers: Record<string, string>): Promise<SlackResponse>;
  /** A correctly signed POST to /slack/events, now. */
  signed(body: string, contentType: string): Promise<SlackResponse>;
  /** `/elevate <text>` typed by `user` in their DM with the bot; the HTTP answer is filed as an ephemeral. */
  command(user: string, text: string, extra?: Record<string, string>): Promise<SlackResponse>;
  /** A block_actions interaction from `user`; `payload` is merged over Slack's envelope. */
  action(user: string, payload: Record<string, unknown>): Promise<SlackResponse>;
  /**
   * A click on the element with `actionId` (and `value`, when given) in a message or view the
   * user sees, with the payload Slack would send for it.
   */
  click(
    user: string,
    where: SlackMessage | SlackView,
    actionId: string,
    value?: string,
  ): Promise<SlackResponse>;
  /** A view_submission of `view` by `user` with exactly these state values (block_id → action_id → value). */
  viewSubmission(
    user: string,
    view: SlackView,
    values: Record<string, Record<string, unknown>>,
  ): Promise<SlackResponse>;
  /**
   * Submits a modal as a person fills it in: every input block keeps its initial value unless
   * `fields` (block_id → text, option value or label, user ids, unix time) says otherwise.
   */
  submit(user: string, view: SlackView, fields?: Record<string, unknown>): Promise<SlackResponse>;
  /** An Events API request; a bare event is wrapped in its `event_callback` envelope. */
  event(event: Record<string, unknown>): Promise<SlackResponse>;
  appHomeOpened(user: string): Promise<SlackResponse>;
  /** Stops the server (SIGTERM) and keeps its database and the workspace; its exit code. */
  pause(): Promise<number | null>;
  /** Starts the server again on the same port, database and workspace, after `pause`. */
  resume(): Promise<void>;
  /** `elevate args…` on the server's database (on PGlite only while paused: the directory is one process's). */
  cli(args: string[]): Promise<CliResult>;
  /** SQL statements, in one transaction, on the server's database (on PGlite only while paused). */
  sql<T>(...queries: string[]): Promise<T[]>;
  stop(): Promise<number | null>;
}

/** A port nobody listens on right now (the child cannot tell us the one PORT=0 would pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function startElevate(options: ElevateOptions): Promise<ElevateServer> {
  const slack = await startSlackWorkspace();
  for (const [user, email] of Object.entries(options.users ?? {})) slack.addUser(user, email);
  const dir = await mkdtemp(join(tmpdir(), 'elevate-slack-e2e-'));
  let database: TestDatabase | undefined;
  let child: ChildProcess | undefined;
  let output = '';
  const signingSecret = randomBytes(16).toString('hex');

  const cleanup = async () => {
    await database?.close().catch(() => {});
    await slack.close().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  };

  try {
    // PostgreSQL: a database of this file's own; PGlite: a data directory only the child opens.
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
      SLACK_BOT_TOKEN: slack.api.token,
      SLACK_SIGNING_SECRET: signingSecret,
      SLACK_API_URL: slack.api.url,
      ELEVATE_POLICY_FILE: policyFile,
      ...dbEnv,
      ...options.env,
    };
    const launch = async () => {
      const started = spawn(process.execPath, [...(options.nodeFlags ?? []), BIN, 'serve'], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = started;
      started.stdout?.on('data', (chunk) => {
        output += chunk;
      });
      started.stderr?.on('data', (chunk) => {
        output += chunk;
      });
      try {
        await waitForHealth(`${url}/healthz`, started, options.startTimeoutMs ?? 100_000, () => output);
      } catch (error) {
        if (started.exitCode === null) started.kill('SIGKILL'); // a failed restart leaves nothing running
        throw error;
      }
      return started;
    };
    let running = await launch();
    /** SIGTERM (SIGKILL after 15 s) and the exit code; the server's data stays. */
    const halt = async () => {
      if (running.exitCode !== null || running.signalCode !== null) return running.exitCode;
      const exited = new Promise<number | null>((resolve) => running.once('exit', (code) => resolve(code)));
      running.kill('SIGTERM');
      const timer = setTimeout(() => running.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    };
    const sign = (body: string, timestamp: number, secret = signingSecret) =>
      `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;

    const post = async (body: string, headers: Record<string, string>): Promise<SlackResponse> => {
      const response = await fetch(`${url}/slack/events`, { method: 'POST', headers, body });
      const text = await response.text();
      let parsed: unknown;
      if (text !== '') {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
      }
      return { status: response.status, body: parsed, text };
    };

    const signed = (body: string, contentType: string) => {
      const timestamp = Math.floor(Date.now() / 1000);
      return post(body, {
        'content-type': contentType,
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': sign(body, timestamp),
      });
    };

    const userObject = (user: string) => ({
      id: user,
      username: slack.api.users.get(user)?.name ?? user.toLowerCase(),
      name: slack.api.users.get(user)?.name ?? user.toLowerCase(),
      team_id: slack.api.team.id,
    });

    /** Interactions are one form field, `payload=<JSON>`. */
    const interaction = (payload: Record<string, unknown>) =>
      signed(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), FORM);

    const envelope = (user: string) => ({
      team: { id: slack.api.team.id, domain: 'fake' },
      user: userObject(user),
      api_app_id: 'A0ELEVATE',
      token: 'verification-token-unused',
      trigger_id: slack.trigger(user),
      is_enterprise_install: false,
      enterprise: null,
    });

    const server: ElevateServer = {
      url,
      slack,
      signingSecret,
      output: () => output,
      sign,
      post,
      signed,

      async command(user, text, extra = {}) {
        const body = new URLSearchParams({
          token: 'verification-token-unused',
          team_id: slack.api.team.id,
          team_domain: 'fake',
          channel_id: slack.dm(user),
          channel_name: 'directmessage',
          user_id: user,
          user_name: slack.api.users.get(user)?.name ?? user.toLowerCase(),
          command: SLASH_COMMAND,
          text,
          api_app_id: 'A0ELEVATE',
          is_enterprise_install: 'false',
          response_url: slack.responseUrl(user),
          trigger_id: slack.trigger(user),
          ...extra,
        }).toString();
        const response = await signed(body, FORM);
        if (response.status === 200) slack.recordAck(user, response.body);
        return response;
      },

      async action(user, payload) {
        const response = await interaction({
          type: 'block_actions',
          ...envelope(user),
          response_url: slack.responseUrl(user),
          ...payload,
        });
        if (response.status === 200) slack.recordAck(user, response.body);
        return response;
      },

      async click(user, where, actionId, value) {
        const element = findElement('blocks' in where ? where.blocks : [], actionId, value);
        if (!element) {
          throw new Error(
            `no element ${actionId}${value === undefined ? '' : ` with value ${value}`} in ${describe(where)}`,
          );
        }
        const action = {
          action_id: actionId,
          block_id: element.blockId,
          type: element.element.type ?? 'button',
          action_ts: (Date.now() / 1000).toFixed(6),
          ...(element.element.value === undefined ? {} : { value: element.element.value }),
          ...(element.element.text ? { text: element.element.text } : {}),
        };
        const isView = 'callback_id' in where || 'versions' in where;
        if (isView) {
          const view = where as SlackView;
          return server.action(user, {
            container: { type: 'view', view_id: view.id },
            view: viewPayload(view, stateOf(view, {})),
            actions: [action],
          });
        }
        const message = where as SlackMessage;
        const ephemeral = message.source !== 'dm' && message.source !== 'channel';
        return server.action(user, {
          container: {
            type: 'message',
            message_ts: message.ts,
            channel_id: message.channel || slack.dm(user),
            is_ephemeral: ephemeral,
          },
          channel: { id: message.channel || slack.dm(user), name: 'directmessage' },
          ...(ephemeral
            ? {}
            : { message: { type: 'message', ts: message.ts, text: message.text, blocks: message.blocks } }),
          actions: [action],
        });
      },

      async viewSubmission(user, view, values) {
        const response = await interaction({
          type: 'view_submission',
          ...envelope(user),
          view: viewPayload(view, values),
          response_urls: [],
        });
        if (response.status === 200) slack.applyViewResponse(user, view.id, response.body);
        return response;
      },

      submit(user, view, fields = {}) {
        return server.viewSubmission(user, view, stateOf(view, fields));
      },

      event(event) {
        const wrapped =
          event.type === 'event_callback' || event.type === 'url_verification'
            ? event
            : {
                token: 'verification-token-unused',
                team_id: slack.api.team.id,
                api_app_id: 'A0ELEVATE',
                event: { event_ts: (Date.now() / 1000).toFixed(6), ...event },
                type: 'event_callback',
                event_id: `Ev${randomBytes(6).toString('hex').toUpperCase()}`,
                event_time: Math.floor(Date.now() / 1000),
                authorizations: [
                  {
                    team_id: slack.api.team.id,
                    user_id: slack.api.botUserId,
                    is_bot: true,
                    is_enterprise_install: false,
                  },
                ],
              };
        return signed(JSON.stringify(wrapped), 'application/json');
      },

      appHomeOpened(user) {
        return server.event({ type: 'app_home_opened', user, channel: slack.dm(user), tab: 'home' });
      },

      pause: halt,

      async resume() {
        if (running.exitCode === null && running.signalCode === null)
          throw new Error('the server is running: pause it first');
        running = await launch();
      },

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

async function waitForHealth(url: string, child: ChildProcess, timeoutMs: number, output: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`elevate serve exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`);
}

function describe(where: SlackMessage | SlackView): string {
  if ('versions' in where) return `view ${where.callback_id ?? where.id}`;
  return `message ${JSON.stringify(where.text).slice(0, 80)}`;
}

type Element = Record<string, unknown> & {
  type?: string;
  action_id?: string;
  value?: string;
  text?: unknown;
};

/** Every interactive element with its block_id. */
export function elementsOf(blocks: Block[]): { blockId: string; element: Element }[] {
  const found: { blockId: string; element: Element }[] = [];
  for (const block of blocks) {
    const blockId = String(block.block_id ?? '');
    if (Array.isArray(block.elements) && block.type === 'actions') {
      for (const element of block.elements as Element[]) found.push({ blockId, element });
    }
    if (block.accessory) found.push({ blockId, element: block.accessory as Element });
    if (block.type === 'input' && block.element) found.push({ blockId, element: block.element as Element });
  }
  return found;
}

function findElement(blocks: Block[], actionId: string, value?: string) {
  return elementsOf(blocks).find(
    ({ element }) => element.action_id === actionId && (value === undefined || element.value === value),
  );
}

/** Buttons a person sees: `action_id` and `value` of each. */
export function buttonsOf(where: { blocks: Block[] }): { actionId: string; value?: string; label: string }[] {
  return elementsOf(where.blocks)
    .filter(({ element }) => element.type === 'button')
    .map(({ element }) => ({
      actionId: String(element.action_id),
      value: element.value,
      label: String((element.text as { text?: string } | undefined)?.text ?? ''),
    }));
}

function viewPayload(view: SlackView, values: Record<string, Record<string, unknown>>) {
  return {
    ...view.raw,
    id: view.id,
    team_id: 'T0FAKE',
    type: view.type,
    blocks: view.blocks,
    private_metadata: view.private_metadata ?? '',
    callback_id: view.callback_id ?? '',
    external_id: view.external_id ?? '',
    hash: view.hash,
    state: { values },
    app_id: 'A0ELEVATE',
    bot_id: 'B0ELEVATE',
    root_view_id: view.id,
    previous_view_id: null,
  };
}

type Option = { text: { type: string; text: string }; value: string };

function optionsOf(element: Element): Option[] {
  const direct = (element.options as Option[] | undefined) ?? [];
  const grouped = ((element.option_groups as { options: Option[] }[] | undefined) ?? []).flatMap(
    (group) => group.options,
  );
  return [...direct, ...grouped];
}

/**
 * The `view.state.values` Slack would send: each input's current value (its initial value unless
 * `fields` sets one). An option not on the list is sent anyway, as a tampered client could.
 */
export function stateOf(view: { blocks: Block[] }, fields: Record<string, unknown>) {
  const values: Record<string, Record<string, unknown>> = {};
  for (const block of view.blocks) {
    if (block.type !== 'input' && block.type !== 'actions' && !block.accessory) continue;
    const elements =
      block.type === 'input'
        ? [block.element as Element]
        : block.type === 'actions'
          ? (block.elements as Element[])
          : [block.accessory as Element];
    const blockId = String(block.block_id ?? '');
    for (const element of elements) {
      if (!element?.action_id || element.type === 'button') continue;
      const given = blockId in fields ? fields[blockId] : undefined;
      const has = blockId in fields;
      values[blockId] ??= {};
      (values[blockId] as Record<string, unknown>)[String(element.action_id)] = stateValue(
        element,
        has,
        given,
      );
    }
  }
  return values;
}

function stateValue(element: Element, has: boolean, given: unknown): Record<string, unknown> {
  const type = String(element.type);
  const pickOption = (value: unknown): Option | null => {
    if (value === null || value === undefined) return null;
    const text = String(value);
    return (
      optionsOf(element).find((option) => option.value === text || option.text.text === text) ?? {
        text: { type: 'plain_text', text },
        value: text,
      }
    );
  };
  switch (type) {
    case 'plain_text_input':
    case 'number_input':
    case 'email_text_input':
    case 'url_text_input':
      return {
        type,
        value: has ? (given === null ? null : String(given)) : ((element.initial_value as string) ?? null),
      };
    case 'static_select':
    case 'external_select':
    case 'radio_buttons':
      return {
        type,
        selected_option: has ? pickOption(given) : ((element.initial_option as Option | undefined) ?? null),
      };
    case 'multi_static_select':
    case 'checkboxes':
      return {
        type,
        selected_options: has
          ? ((given as unknown[]) ?? []).map((v) => pickOption(v))
          : ((element.initial_options as Option[] | undefined) ?? []),
      };
    case 'users_select':
      return { type, selected_user: has ? given : (element.initial_user ?? null) };
    case 'multi_users_select':
      return { type, selected_users: has ? given : (element.initial_users ?? []) };
    case 'conversations_select':
    case 'channels_select':
      return {
        type,
        [type === 'channels_select' ? 'selected_channel' : 'selected_conversation']: has
          ? given
          : (element.initial_conversation ?? element.initial_channel ?? null),
      };
    case 'datetimepicker':
      return { type, selected_date_time: has ? given : (element.initial_date_time ?? null) };
    case 'datepicker':
      return { type, selected_date: has ? given : (element.initial_date ?? null) };
    case 'timepicker':
      return { type, selected_time: has ? given : (element.initial_time ?? null) };
    default:
      return { type, value: has ? given : (element.initial_value ?? null) };
  }
}
