import { App, type Logger as BoltLogger, HTTPReceiver, LogLevel } from '@slack/bolt';
import type { Principal } from '../../elevation/principal-repository.ts';
import { DEFAULT_SLACK_API_URL } from '../../grants/slack-usergroup/slack-env.ts';
import type { Route } from '../../http/server.ts';
import type { Logger } from '../../log.ts';
import type { ChatSurface, SurfaceDeps } from '../chat-platform.ts';
import { boardMessage, plainMessage } from '../messages.ts';
import { registerAdminListeners } from './admin-listeners.ts';
import { registerApprovalListeners } from './approval-listeners.ts';
import { renderHome } from './render.ts';
import { registerRequesterListeners } from './requester-listeners.ts';
import { registerReviewListeners } from './review-listeners.ts';
import type { SlackContext } from './slack-context.ts';
import { createSlackDelivery } from './slack-delivery.ts';
import { slackChatOn } from './slack-env.ts';
import { slackFetch } from './slack-fetch.ts';
import { createSlackIdentity } from './slack-identity.ts';

/** Slack's replay window; Bolt refuses older timestamps, we refuse ones this far in the future. */
const MAX_SKEW_S = 300;

/** The Slack chat platform of one process: its route (HTTP mode), its outbox delivery, start/stop. */
export interface SlackPlatform extends ChatSurface {
  mode: 'http' | 'socket';
  /**
   * HTTP mode: what the HTTP front (`http/front.ts`) needs to ack Slack's commands, clicks and
   * events itself — the route and the signing secret — and where it hands each one over, verified
   * and parsed, to run the listeners here (their ack is then a no-op).
   */
  front?: {
    path: string;
    signingSecret: string;
    /** The same refusal of future timestamps as this platform's own receiver. */
    maxSkewSeconds: number;
    receive(body: Record<string, unknown>, retry: { num?: number; reason?: string }): void;
  };
}

/**
 * Builds the Slack platform when its credentials are set (else undefined): HTTP mode on
 * `POST /slack/events` with SLACK_SIGNING_SECRET, Socket Mode with SLACK_APP_TOKEN. Every Web API
 * call goes to SLACK_API_URL. Listeners are the same in both modes.
 */
export function createSlackPlatform(
  deps: SurfaceDeps & {
    /** Extra Bolt options, e.g. `botId`/`botUserId` to skip auth.test. */
    boltOptions?: { botId?: string; botUserId?: string };
  },
): SlackPlatform | undefined {
  const { config } = deps;
  const token = config.SLACK_BOT_TOKEN;
  if (!token || !slackChatOn(config)) return undefined;
  const log = deps.log.child({ platform: 'slack' });
  // A fresh object: Socket Mode writes its own retry settings into the one it gets. 429s are not
  // waited out inside the client: the outbox reschedules by Retry-After, a click answers at once.
  // Web API calls and respond() go through slackFetch (node:http), which costs the request path
  // less than Node's fetch.
  const clientOptions = {
    slackApiUrl: config.SLACK_API_URL ?? DEFAULT_SLACK_API_URL,
    retryConfig: { retries: 1, factor: 1, minTimeout: 200, maxTimeout: 500 },
    rejectRateLimitedCalls: true,
    fetch: slackFetch,
  };
  const common = {
    token,
    clientOptions,
    logger: boltLogger(log),
    deferInitialization: true,
    // Bolt's conversation store keeps every conversation's context in memory on each request;
    // no listener reads it.
    convoStore: false as const,
    ...deps.boltOptions,
  };
  const socket = Boolean(config.SLACK_APP_TOKEN);
  const receiver = socket
    ? undefined
    : new HTTPReceiver({
        signingSecret: config.SLACK_SIGNING_SECRET ?? '',
        endpoints: '/slack/events',
        processBeforeResponse: false,
        logger: boltLogger(log),
      });
  const app = receiver
    ? new App({ ...common, receiver })
    : new App({ ...common, socketMode: true, appToken: config.SLACK_APP_TOKEN });
  app.error(async (error) => {
    log.error({ err: error }, 'Slack listener failed');
  });

  const inFlight = new Set<Promise<unknown>>();
  const identity = createSlackIdentity({ client: app.client, db: deps.db, clock: deps.clock });
  const ctx: SlackContext = {
    db: deps.db,
    clock: deps.clock,
    log,
    client: app.client,
    activations: deps.activations,
    admin: deps.admin,
    alerts: deps.alerts,
    reviews: deps.reviews,
    identity,
    async publishHome(userId: string, known?: Principal) {
      let message = plainMessage('');
      try {
        const principal = known ?? (await identity.principalOf(userId, ''));
        message = boardMessage(await deps.activations.listAccess(principal.id), deps.clock());
      } catch (error) {
        message = plainMessage(error instanceof Error ? error.message : String(error));
      }
      await app.client.views.publish({ user_id: userId, view: renderHome(message) });
    },
    track(work) {
      inFlight.add(work);
      work.finally(() => inFlight.delete(work)).catch(() => {});
    },
  };
  registerRequesterListeners(app, ctx);
  registerApprovalListeners(app, ctx);
  registerAdminListeners(app, ctx);
  registerReviewListeners(app, ctx);

  const routes: Route[] = receiver
    ? [
        {
          method: 'POST',
          path: '/slack/events',
          handler: (req, res) => {
            // Bolt refuses old timestamps only; one from the future is a replay prepared in advance.
            const ts = Number(req.headers['x-slack-request-timestamp']);
            if (Number.isFinite(ts) && ts > Date.now() / 1000 + MAX_SKEW_S) {
              res.writeHead(401);
              res.end();
              return;
            }
            receiver.requestListener(req, res);
          },
        },
      ]
    : [];

  return {
    mode: socket ? 'socket' : 'http',
    routes,
    ...(receiver
      ? {
          front: {
            path: '/slack/events',
            signingSecret: config.SLACK_SIGNING_SECRET ?? '',
            maxSkewSeconds: MAX_SKEW_S,
            receive(body, retry) {
              ctx.track(
                app
                  .processEvent({
                    body,
                    ack: async () => {},
                    ...(retry.num === undefined ? {} : { retryNum: retry.num }),
                    ...(retry.reason === undefined ? {} : { retryReason: retry.reason }),
                  })
                  .catch((error: unknown) => log.error({ err: error }, 'Slack listener failed')),
              );
            },
          },
        }
      : {}),
    delivery: createSlackDelivery({
      client: app.client,
      db: deps.db,
      clock: deps.clock,
      log,
      activations: deps.activations,
      reviews: deps.reviews,
      alerts: deps.alerts,
      identity,
      publishHome: ctx.publishHome,
    }),
    async start() {
      // One awaited auth.test (its failure stops the start with a clear error), then connect if Socket Mode.
      await app.init();
      if (socket) await app.start();
      log.info(
        { mode: socket ? 'socket' : 'http' },
        `Slack on (${socket ? 'Socket Mode' : 'HTTP mode, POST /slack/events'})`,
      );
    },
    async stop() {
      if (socket) await app.stop();
      await Promise.allSettled([...inFlight]);
    },
  };
}

/** Bolt's logger interface on top of ours. */
function boltLogger(log: Logger): BoltLogger {
  let level = LogLevel.INFO;
  return {
    // Bolt and its Web API client log a debug line or more per request: build none that is not kept.
    debug: (...msg) => {
      if (log.isLevelEnabled('debug')) log.debug(msg.map(String).join(' '));
    },
    info: (...msg) => log.info(msg.map(String).join(' ')),
    warn: (...msg) => log.warn(msg.map(String).join(' ')),
    error: (...msg) => log.error(msg.map(String).join(' ')),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}
