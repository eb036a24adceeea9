import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { App } from '@slack/bolt';
import type { AppsManifestCreateArguments } from '@slack/web-api';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { parse } from 'yaml';
import { COMMAND } from '../../../src/chat/slack/ids.ts';
import { createSlackPlatform, type SlackPlatform } from '../../../src/chat/slack/slack-platform.ts';
import { loadConfig } from '../../../src/config.ts';
import type { Db } from '../../../src/db/client.ts';
import type { ActivationService } from '../../../src/elevation/activation-service.ts';
import type { AdminService } from '../../../src/elevation/admin-service.ts';
import type { AlertService } from '../../../src/elevation/alert-service.ts';
import type { ReviewService } from '../../../src/elevation/review-service.ts';
import { SLACK_USERGROUP_SCOPES } from '../../../src/grants/slack-usergroup/slack-usergroup-provider.ts';
import { createLogger } from '../../../src/log.ts';

/**
 * `manifests/slack/manifest.yaml` against the facts in code: the slash command the platform
 * registers, the route the server mounts, the events it listens to, and the bot scopes that
 * exactly cover every Web API method the Slack code and the slack-usergroup provider call.
 * The manifest's shape is checked against `@slack/web-api`'s `Manifest` type by the compiler.
 */

/** The manifest type of `@slack/web-api` (exported through the apps.manifest.* arguments). */
type Manifest = AppsManifestCreateArguments['manifest'];

const ROOT = new URL('../../../', import.meta.url).pathname;
const MANIFEST = join(ROOT, 'manifests/slack/manifest.yaml');
/** Where Slack Web API calls may live. */
const SLACK_CODE = ['src/chat/slack', 'src/grants/slack-usergroup'];

/**
 * Each Web API method the code calls → the bot scopes it needs (docs.slack.dev/reference/methods).
 * A method the code calls that is missing here fails the test: add it with its scopes.
 */
const METHOD_SCOPES: Record<string, string[]> = {
  'auth.test': [],
  'chat.postMessage': ['chat:write'],
  'chat.update': ['chat:write'],
  'chat.postEphemeral': ['chat:write'],
  // A 1:1 DM; channels:manage / groups:write / mpim:write would be for other conversation types.
  'conversations.open': ['im:write'],
  // users:read for the user, users:read.email for its profile's email (how Elevate knows people).
  'users.info': ['users:read', 'users:read.email'],
  'users.lookupByEmail': ['users:read.email'],
  'usergroups.list': ['usergroups:read'],
  'usergroups.users.list': ['usergroups:read'],
  'usergroups.users.update': ['usergroups:write'],
  'views.open': [],
  'views.push': [],
  'views.update': [],
  'views.publish': [],
};

/** Each Events API event the platform may listen to → the bot scopes its subscription needs. */
const EVENT_SCOPES: Record<string, string[]> = {
  app_home_opened: [],
  app_mention: ['app_mentions:read'],
  'message.im': ['im:history'],
};

/** Top-level keys of a manifest (the `Manifest` type allows any other key, Slack does not). */
const MANIFEST_KEYS = [
  '_metadata',
  'display_information',
  'features',
  'oauth_config',
  'settings',
  'functions',
];

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) =>
      e.isDirectory()
        ? sourceFiles(join(dir, e.name))
        : Promise.resolve(e.name.endsWith('.ts') ? [join(dir, e.name)] : []),
    ),
  );
  return nested.flat();
}

/** Every Web API method named in the code: `client.<ns>.<method>(` and `apiCall('<method>'`, with where. */
async function calledMethods(): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  const files = (await Promise.all(SLACK_CODE.map((dir) => sourceFiles(join(ROOT, dir))))).flat();
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    const patterns = [
      /\bclient\s*\.\s*([a-zA-Z]+(?:\s*\.\s*[a-zA-Z]+)+)\s*\(/g,
      /\bapiCall\s*(?:<[^>]*>)?\(\s*['"`]([a-zA-Z.]+)['"`]/g,
    ];
    for (const pattern of patterns) {
      for (const match of text.matchAll(pattern)) {
        const method = (match[1] ?? '').replace(/\s+/g, '');
        const line = text.slice(0, match.index).split('\n').length;
        found.set(method, [...(found.get(method) ?? []), `${relative(ROOT, file)}:${line}`]);
      }
    }
  }
  return found;
}

/** What the platform registers with Bolt, in HTTP mode, and the routes it mounts. */
interface Registered {
  platform: SlackPlatform;
  commands: string[];
  events: string[];
  other: string[];
}

function buildPlatform(env: Record<string, string>): Registered {
  const calls = { command: [] as unknown[], event: [] as unknown[], other: [] as string[] };
  const spies = [
    vi.spyOn(App.prototype, 'command').mockImplementation(function (this: App, ...args: unknown[]) {
      calls.command.push(args[0]);
      return this;
    } as never),
    vi.spyOn(App.prototype, 'event').mockImplementation(function (this: App, ...args: unknown[]) {
      calls.event.push(args[0]);
      return this;
    } as never),
    // Listeners that need manifest entries of their own (message events, shortcuts, options URLs).
    ...(['message', 'shortcut', 'options'] as const).map((kind) =>
      vi.spyOn(App.prototype, kind).mockImplementation(function (this: App) {
        calls.other.push(kind);
        return this;
      } as never),
    ),
  ];
  try {
    const platform = createSlackPlatform({
      config: loadConfig({ NODE_ENV: 'test', ...env }),
      // Nothing is called at construction: listeners only run on requests.
      db: {} as Db,
      clock: () => new Date(),
      log: createLogger('silent'),
      activations: {} as ActivationService,
      admin: {} as AdminService,
      alerts: {} as AlertService,
      reviews: {} as ReviewService,
      boltOptions: { botId: 'B0TEST', botUserId: 'U0TEST' },
    });
    if (!platform) throw new Error('the Slack platform did not switch on');
    const names = (list: unknown[]) => list.map((n) => (typeof n === 'string' ? n : String(n)));
    return { platform, commands: names(calls.command), events: names(calls.event), other: calls.other };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

let manifest: Manifest;
let raw: string;
let http: Registered;

beforeAll(async () => {
  raw = await readFile(MANIFEST, 'utf8');
  // Compile-time: the parsed file is used as the SDK's Manifest type below (its shape is
  // checked against that type for real by the compiler in the last test).
  manifest = parse(raw) as Manifest;
  http = buildPlatform({
    SLACK_BOT_TOKEN: 'xoxb-unit-test',
    SLACK_SIGNING_SECRET: 'unit-test-signing-secret',
  });
});

afterAll(async () => {
  await http?.platform.stop();
});

describe('the Slack app manifest', () => {
  test('declares the slash command the platform registers, with a usage hint', () => {
    const commands = manifest.features?.slash_commands ?? [];
    expect(commands.map((c) => c.command)).toEqual([COMMAND]);
    expect(http.commands).toEqual([COMMAND]);
    const [command] = commands;
    expect(command?.description.length).toBeGreaterThan(0);
    expect(command?.usage_hint).toMatch(/activate/);
    // Every subcommand of `/elevate help` is in the hint.
    for (const verb of ['activate', 'status', 'approvals', 'admin', 'help'])
      expect(command?.usage_hint).toContain(verb);
  });

  test('sends commands, interactivity and events to the route the server mounts', () => {
    const mounted = http.platform.routes.map((r) => `${r.method} ${r.path}`);
    expect(mounted).toEqual(['POST /slack/events']);
    const urls = {
      command: manifest.features?.slash_commands?.[0]?.url,
      interactivity: manifest.settings?.interactivity?.request_url,
      events: manifest.settings?.event_subscriptions?.request_url,
    };
    for (const [what, url] of Object.entries(urls)) {
      expect(url, what).toBeDefined();
      const { protocol, pathname } = new URL(url as string);
      expect(protocol, what).toBe('https:');
      expect(
        http.platform.routes.some((r) => pathname === r.path),
        `${what} URL ${url}`,
      ).toBe(true);
    }
    expect(manifest.settings?.interactivity?.is_enabled).toBe(true);
  });

  test('subscribes to exactly the events the platform listens to', () => {
    expect(http.events.length).toBeGreaterThan(0);
    const subscribed = manifest.settings?.event_subscriptions?.bot_events ?? [];
    expect([...subscribed].sort()).toEqual([...new Set(http.events)].sort());
    // Message events, shortcuts and options would need manifest entries this file does not have.
    expect(http.other).toEqual([]);
  });

  test('turns on the App Home tabs, and HTTP mode with a note on Socket Mode', () => {
    expect(manifest.features?.app_home).toMatchObject({ home_tab_enabled: true, messages_tab_enabled: true });
    expect(manifest.features?.bot_user?.display_name).toMatch(/^[a-z0-9._-]{1,80}$/);
    expect(manifest.settings?.socket_mode_enabled).toBe(false);
    expect(raw).toMatch(/#.*socket mode/i);
    expect(raw).toMatch(/SLACK_APP_TOKEN/);
    expect(raw).toMatch(/connections:write/);
  });

  test('asks for exactly the bot scopes the Web API calls, the command and the events need', async () => {
    const called = await calledMethods();
    expect(called.size, 'no Web API call found: the scan is broken').toBeGreaterThan(5);
    const unknown = [...called].filter(([method]) => !(method in METHOD_SCOPES));
    expect(
      unknown.map(([method, where]) => `${method} (${where.join(', ')})`),
      'methods missing from METHOD_SCOPES: add each with the scopes Slack documents for it',
    ).toEqual([]);
    const unknownEvents = http.events.filter((e) => !(e in EVENT_SCOPES));
    expect(unknownEvents, 'events missing from EVENT_SCOPES').toEqual([]);

    const needed = new Set<string>([
      ...[...called.keys()].flatMap((m) => METHOD_SCOPES[m] ?? []),
      ...http.events.flatMap((e) => EVENT_SCOPES[e] ?? []),
      ...(http.commands.length > 0 ? ['commands'] : []),
    ]);
    const asked = manifest.oauth_config?.scopes?.bot ?? [];
    expect(new Set(asked).size, 'a scope is listed twice').toBe(asked.length);
    expect([...asked].sort()).toEqual([...needed].sort());
    // The provider's own check (`apply --dry-run`) expects these on the same token.
    for (const scope of SLACK_USERGROUP_SCOPES) expect(asked).toContain(scope);
    // Only bot scopes: no user token is ever used.
    expect(manifest.oauth_config?.scopes?.user ?? []).toEqual([]);
  });

  test('the scan finds what the code calls (it is not vacuous)', async () => {
    const called = await calledMethods();
    for (const method of [
      'users.info',
      'conversations.open',
      'chat.postMessage',
      'chat.update',
      'views.open',
      'views.publish',
      'usergroups.users.update',
    ])
      expect([...called.keys()]).toContain(method);
  });

  test('has only the keys Slack knows at the top level', () => {
    expect(Object.keys(manifest).filter((k) => !MANIFEST_KEYS.includes(k))).toEqual([]);
    expect(manifest.display_information.name.length).toBeLessThanOrEqual(35);
    expect((manifest.display_information.description ?? '').length).toBeLessThanOrEqual(140);
  });

  test('is a @slack/web-api Manifest to the compiler (unknown keys, scopes and events are refused)', async () => {
    // The manifest as an object literal `satisfies Manifest`: TypeScript checks every nested key
    // (excess properties), the scope names and the event names against the SDK's unions.
    const dir = await mkdtemp(join(tmpdir(), 'elevate-manifest-'));
    try {
      await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
      const check = (value: unknown) =>
        `import type { AppsManifestCreateArguments } from '@slack/web-api';\n` +
        `export const manifest = ${JSON.stringify(value, null, 2)} satisfies AppsManifestCreateArguments['manifest'];\n`;
      const tsc = async (source: string) => {
        await writeFile(join(dir, 'check.ts'), source);
        try {
          await promisify(execFile)(
            process.execPath,
            [
              join(ROOT, 'node_modules/typescript/bin/tsc'),
              '--noEmit',
              '--strict',
              '--skipLibCheck',
              '--module',
              'nodenext',
              '--moduleResolution',
              'nodenext',
              '--target',
              'es2024',
              join(dir, 'check.ts'),
            ],
            { cwd: dir },
          );
          return '';
        } catch (error) {
          return String((error as { stdout?: string }).stdout ?? error);
        }
      };
      expect(await tsc(check(manifest))).toBe('');
      // The check bites: a misspelt scope and an unknown key are compile errors.
      const broken = structuredClone(manifest) as unknown as Record<string, unknown> & {
        features: { app_home: Record<string, unknown> };
      };
      broken.oauth_config = { scopes: { bot: ['chat:wrote'] } };
      broken.features.app_home.home_tab = true;
      const errors = await tsc(check(broken));
      expect(errors).toMatch(/chat:wrote/);
      expect(errors).toMatch(/home_tab/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
