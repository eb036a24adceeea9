import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type FakeSlackApi,
  type FakeSlackCall,
  type FakeSlackUser,
  slackError,
  startFakeSlackApi,
} from './fake-slack-api.ts';

/**
 * A Slack workspace for end-to-end tests: the fake Web API (`fake-slack-api.ts`) extended, only
 * through its public `method()`, with what the bot uses to talk to people — `users.info`,
 * `conversations.open`, `chat.postMessage` / `chat.update` / `chat.postEphemeral`,
 * `views.open` / `views.push` / `views.update` / `views.publish` — plus a local HTTP endpoint that
 * plays every `response_url` (what Bolt's `respond()` posts to).
 *
 * It keeps what a person would see: messages per channel (updated in place by `chat.update`),
 * ephemeral messages per user (from `chat.postEphemeral`, `respond()`, and the HTTP answer to a
 * slash command, which the harness files here), open modals per user, and each user's App Home.
 * `trigger_id`s behave as Slack's: one use, within 3 seconds.
 */

export type Block = Record<string, unknown>;

/** A message as a person sees it. */
export interface SlackMessage {
  /** Where it came from: `dm`/`channel` (chat.postMessage), `ephemeral`, `respond`, `ack`. */
  source: 'dm' | 'channel' | 'ephemeral' | 'respond' | 'ack';
  channel: string;
  ts: string;
  text: string;
  blocks: Block[];
  /** How many times `chat.update` (or `replace_original`) changed it. */
  updates: number;
  /** For respond posts: the response_url, and whether it asked to replace / delete the original. */
  responseUrl?: string;
  replaceOriginal?: boolean;
  deleteOriginal?: boolean;
}

/** An open modal or an App Home view. */
export interface SlackView {
  id: string;
  /** Whose screen it is on. */
  user: string;
  type: string;
  callback_id?: string;
  private_metadata?: string;
  external_id?: string;
  hash: string;
  title?: unknown;
  blocks: Block[];
  /** Every version, first to last (views.update adds one). */
  versions: Block[][];
  closed: boolean;
  raw: Record<string, unknown>;
}

export interface SlackWorkspace {
  api: FakeSlackApi;
  /** Every Web API call, in order. */
  calls: FakeSlackCall[];
  /** The base URL for `response_url`s. */
  responseBase: string;
  addUser(id: string, email?: string, name?: string): FakeSlackUser;
  /** The DM channel Slack would give the bot with this user. */
  dm(user: string): string;
  /**
   * A fresh trigger_id for this user (valid once, 3 s from `at`, ms since the epoch, default now),
   * as Slack puts in a payload.
   */
  trigger(user: string, at?: number): string;
  /** A fresh response_url for this user. */
  responseUrl(user: string): string;
  /** Files the HTTP answer to a request as an ephemeral message, as Slack shows it. */
  recordAck(user: string, body: unknown): void;
  /** Every message this user can see: their DM with the bot, ephemerals, respond() posts. */
  messagesFor(user: string): SlackMessage[];
  /** Messages in a channel (approval channels, DMs). */
  channel(channel: string): SlackMessage[];
  /** Modals opened for this user, oldest first (closed ones included; see `closed`). */
  viewsFor(user: string): SlackView[];
  /** The user's App Home as last published. */
  home(user: string): SlackView | undefined;
  view(id: string): SlackView | undefined;
  closeView(id: string): void;
  /** Applies a view_submission answer as Slack would: `update`/`push` show the given view, `clear` closes all, none closes this one. */
  applyViewResponse(user: string, viewId: string, body: unknown): void;
  /** Polls `probe` until it returns something truthy (or true); throws with `what` after `timeoutMs`. */
  waitFor<T>(what: string, probe: () => T | undefined | null | false, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

const TRIGGER_TTL_MS = 3_000;

/** All text a person reads in blocks: section text and fields, headers, context, button labels. */
export function blocksText(blocks: unknown): string {
  const out: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
    } else if (node && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      if (typeof record.text === 'string') out.push(record.text);
      for (const [key, value] of Object.entries(record)) {
        // Values and ids are for machines, not people.
        if (key === 'text' && typeof value === 'string') continue;
        if (['value', 'action_id', 'block_id', 'url', 'image_url', 'private_metadata'].includes(key))
          continue;
        walk(value);
      }
    }
  };
  walk(blocks);
  return out.join('\n');
}

/** What a person reads in a message: its blocks, or its text when it has none (the notification text). */
export function messageText(message: { text: string; blocks: Block[] }): string {
  return message.blocks.length > 0 ? `${blocksText(message.blocks)}\n${message.text}` : message.text;
}

/** A Web API argument that may be a JSON string (form-encoded bodies) or a value (JSON bodies). */
function json<T>(value: unknown, fallback: T): T {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value !== 'string') return value as T;
  try {
    return JSON.parse(value) as T;
  } catch {
    return fallback;
  }
}

export async function startSlackWorkspace(): Promise<SlackWorkspace> {
  const api = await startFakeSlackApi();
  let tsCounter = 0;
  let idCounter = 0;
  const nextTs = () =>
    `${1_800_000_000 + Math.floor(tsCounter / 1000)}.${String(++tsCounter).padStart(6, '0')}`;
  const nextId = (prefix: string) => `${prefix}${String(++idCounter).padStart(8, '0')}`;

  const channels = new Map<string, SlackMessage[]>();
  const ephemerals = new Map<string, SlackMessage[]>();
  const triggers = new Map<string, { user: string; at: number; used: boolean }>();
  const responseUrls = new Map<string, string>(); // url → user
  const views = new Map<string, SlackView>();
  const homes = new Map<string, SlackView>();

  const ephemeralOf = (user: string) => {
    const list = ephemerals.get(user) ?? [];
    ephemerals.set(user, list);
    return list;
  };
  const channelOf = (channel: string) => {
    const list = channels.get(channel) ?? [];
    channels.set(channel, list);
    return list;
  };
  const dm = (user: string) => `D${user}`;
  /** A user id as a channel means the DM with the bot, as in Slack. */
  const resolveChannel = (channel: string) => (/^[UW]/.test(channel) ? dm(channel) : channel);

  const scope = (...names: string[]) => {
    for (const name of names) api.scopes.add(name);
    return names;
  };

  api.method('users.info', scope('users:read', 'users:read.email'), (args, fake) => {
    const user = fake.users.get(String(args.user ?? ''));
    if (!user) return slackError('user_not_found');
    return {
      user: {
        id: user.id,
        team_id: fake.team.id,
        name: user.name ?? user.email?.split('@')[0] ?? user.id,
        real_name: user.name ?? user.id,
        deleted: user.deleted ?? false,
        is_bot: user.isBot ?? false,
        tz: 'UTC',
        tz_offset: 0,
        profile: { email: user.email, real_name: user.name ?? user.id, display_name: user.name ?? '' },
      },
    };
  });

  api.method('conversations.open', scope('im:write'), (args, fake) => {
    const users = String(args.users ?? '')
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean);
    if (users.length !== 1)
      return slackError(users.length === 0 ? 'users_list_not_supplied' : 'not_supported');
    const [user] = users as [string];
    if (!fake.users.has(user)) return slackError('user_not_found');
    return { channel: { id: dm(user) } };
  });

  api.method('chat.postMessage', scope('chat:write'), (args) => {
    const raw = String(args.channel ?? '');
    if (!raw) return slackError('channel_not_found');
    const text = String(args.text ?? '');
    const blocks = json<Block[]>(args.blocks, []);
    if (!text && blocks.length === 0) return slackError('no_text');
    const channel = resolveChannel(raw);
    const ts = nextTs();
    channelOf(channel).push({
      source: channel.startsWith('D') ? 'dm' : 'channel',
      channel,
      ts,
      text,
      blocks,
      updates: 0,
    });
    return { channel, ts, message: { ts, text, blocks, type: 'message', bot_id: 'B0ELEVATE' } };
  });

  api.method('chat.update', scope('chat:write'), (args) => {
    const channel = resolveChannel(String(args.channel ?? ''));
    const message = channels.get(channel)?.find((m) => m.ts === String(args.ts ?? ''));
    if (!message) return slackError(channels.has(channel) ? 'message_not_found' : 'channel_not_found');
    if (args.text !== undefined) message.text = String(args.text);
    if (args.blocks !== undefined) message.blocks = json<Block[]>(args.blocks, []);
    message.updates += 1;
    return { channel, ts: message.ts, text: message.text };
  });

  api.method('chat.postEphemeral', scope('chat:write'), (args, fake) => {
    const user = String(args.user ?? '');
    if (!fake.users.has(user)) return slackError('user_not_in_channel');
    const text = String(args.text ?? '');
    const blocks = json<Block[]>(args.blocks, []);
    if (!text && blocks.length === 0) return slackError('no_text');
    const ts = nextTs();
    ephemeralOf(user).push({
      source: 'ephemeral',
      channel: resolveChannel(String(args.channel ?? '')),
      ts,
      text,
      blocks,
      updates: 0,
    });
    return { message_ts: ts };
  });

  const openView = (args: Record<string, unknown>, push: boolean) => {
    const triggerId = String(args.trigger_id ?? '');
    const trigger = triggers.get(triggerId);
    if (!trigger) return slackError('invalid_trigger_id');
    if (trigger.used) return slackError('exchanged_trigger_id');
    if (Date.now() - trigger.at > TRIGGER_TTL_MS) return slackError('expired_trigger_id');
    const view = json<Record<string, unknown> | undefined>(args.view, undefined);
    if (view?.type !== 'modal' || !view) return slackError('invalid_arguments');
    trigger.used = true;
    if (push && !viewsFor(trigger.user).some((v) => !v.closed)) return slackError('not_found');
    const stored = storeView(nextId('V'), trigger.user, view);
    return { view: viewObject(stored) };
  };
  api.method('views.open', [], (args) => openView(args, false));
  api.method('views.push', [], (args) => openView(args, true));

  api.method('views.update', [], (args) => {
    const existing = args.view_id
      ? views.get(String(args.view_id))
      : [...views.values()].find((v) => v.external_id === String(args.external_id ?? ''));
    if (!existing) return slackError('not_found');
    if (args.hash && args.hash !== existing.hash) return slackError('hash_conflict');
    const view = json<Record<string, unknown> | undefined>(args.view, undefined);
    if (!view) return slackError('invalid_arguments');
    const updated = storeView(existing.id, existing.user, view, existing);
    return { view: viewObject(updated) };
  });

  api.method('views.publish', [], (args, fake) => {
    const user = String(args.user_id ?? '');
    if (!fake.users.has(user)) return slackError('user_not_found');
    const view = json<Record<string, unknown> | undefined>(args.view, undefined);
    if (view?.type !== 'home') return slackError('invalid_arguments');
    const existing = homes.get(user);
    if (args.hash && existing && args.hash !== existing.hash) return slackError('hash_conflict');
    const stored = storeView(existing?.id ?? nextId('VH'), user, view, existing);
    views.delete(stored.id); // a home is not a modal
    homes.set(user, stored);
    return { view: viewObject(stored) };
  });

  function storeView(
    id: string,
    user: string,
    view: Record<string, unknown>,
    previous?: SlackView,
  ): SlackView {
    const blocks = json<Block[]>(view.blocks, []);
    const stored: SlackView = {
      id,
      user,
      type: String(view.type ?? 'modal'),
      callback_id: view.callback_id === undefined ? previous?.callback_id : String(view.callback_id),
      private_metadata:
        view.private_metadata === undefined ? previous?.private_metadata : String(view.private_metadata),
      external_id: view.external_id === undefined ? previous?.external_id : String(view.external_id),
      hash: `${Date.now()}.${nextId('h')}`,
      title: view.title,
      blocks,
      versions: [...(previous?.versions ?? []), blocks],
      closed: false,
      raw: view,
    };
    if (stored.type !== 'home') views.set(id, stored);
    return stored;
  }

  function viewObject(view: SlackView) {
    return {
      ...view.raw,
      id: view.id,
      team_id: api.team.id,
      type: view.type,
      blocks: view.blocks,
      callback_id: view.callback_id ?? '',
      private_metadata: view.private_metadata ?? '',
      external_id: view.external_id ?? '',
      hash: view.hash,
      state: { values: {} },
      app_id: 'A0ELEVATE',
      bot_id: 'B0ELEVATE',
    };
  }

  const viewsFor = (user: string) => [...views.values()].filter((v) => v.user === user);

  // The response_url endpoint: what respond() posts, filed as an ephemeral message for its user.
  const responder = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = `${responseBase}${request.url ?? ''}`;
      const user = responseUrls.get(url);
      if (request.method !== 'POST' || !user) {
        response.writeHead(404).end('no_response_url');
        return;
      }
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        response.writeHead(400).end('invalid_payload');
        return;
      }
      api.calls.push({ method: 'response_url', args: { url, ...body }, status: 200 });
      ephemeralOf(user).push({
        source: 'respond',
        channel: '',
        ts: nextTs(),
        text: String(body.text ?? ''),
        blocks: json<Block[]>(body.blocks, []),
        updates: 0,
        responseUrl: url,
        replaceOriginal: body.replace_original === true || body.replace_original === 'true',
        deleteOriginal: body.delete_original === true || body.delete_original === 'true',
      });
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  responder.listen(0, '127.0.0.1');
  await once(responder, 'listening');
  const responseBase = `http://127.0.0.1:${(responder.address() as AddressInfo).port}`;

  const workspace: SlackWorkspace = {
    api,
    calls: api.calls,
    responseBase,
    addUser: (id, email, name) => api.addUser({ id, email, name: name ?? id.toLowerCase() }),
    dm,
    trigger(user, at = Date.now()) {
      const id = `${nextId('')}.${Math.floor(Math.random() * 1e9)}.${Math.random().toString(16).slice(2)}`;
      triggers.set(id, { user, at, used: false });
      return id;
    },
    responseUrl(user) {
      const url = `${responseBase}/commands/${api.team.id}/${nextId('R')}`;
      responseUrls.set(url, user);
      return url;
    },
    recordAck(user, body) {
      if (!body || typeof body !== 'object') {
        if (typeof body === 'string' && body.trim() !== '') {
          ephemeralOf(user).push({
            source: 'ack',
            channel: '',
            ts: nextTs(),
            text: body,
            blocks: [],
            updates: 0,
          });
        }
        return;
      }
      const record = body as Record<string, unknown>;
      if (record.text === undefined && record.blocks === undefined) return;
      ephemeralOf(user).push({
        source: 'ack',
        channel: '',
        ts: nextTs(),
        text: String(record.text ?? ''),
        blocks: json<Block[]>(record.blocks, []),
        updates: 0,
      });
    },
    messagesFor: (user) =>
      [...(channels.get(dm(user)) ?? []), ...(ephemerals.get(user) ?? [])].sort((a, b) =>
        a.ts.localeCompare(b.ts),
      ),
    channel: (channel) => [...(channels.get(resolveChannel(channel)) ?? [])],
    viewsFor,
    home: (user) => homes.get(user),
    view: (id) => views.get(id),
    closeView(id) {
      const view = views.get(id);
      if (view) view.closed = true;
    },
    applyViewResponse(user, viewId, body) {
      const record = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
      const action = record.response_action;
      const current = views.get(viewId);
      if (action === 'errors') return;
      if (action === 'update' && current) {
        storeView(current.id, user, json<Record<string, unknown>>(record.view, {}), current);
      } else if (action === 'push') {
        storeView(nextId('V'), user, json<Record<string, unknown>>(record.view, {}));
      } else if (action === 'clear') {
        for (const view of viewsFor(user)) view.closed = true;
      } else if (current) {
        current.closed = true;
      }
    },
    async waitFor(what, probe, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = probe();
        if (value) return value as NonNullable<typeof value>;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async close() {
      responder.closeAllConnections();
      responder.close();
      await api.close();
    },
  };
  return workspace;
}
