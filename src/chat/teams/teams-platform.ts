import type { IncomingMessage, ServerResponse } from 'node:http';
import { PUBLIC, withOverrides } from '@microsoft/teams.api';
import type { HttpRouteHandler, IHttpServerAdapter } from '@microsoft/teams.apps';
import { App } from '@microsoft/teams.apps';
import type { ILogger } from '@microsoft/teams.common';
import { type Route, sendJson } from '../../http/server.ts';
import type { Logger } from '../../log.ts';
import type { ChatSurface, SurfaceDeps } from '../chat-platform.ts';
import { createConnector } from './connector.ts';
import { createRateLimiter } from './rate-limit.ts';
import type { IncomingActivity, TeamsContext } from './teams-context.ts';
import { createTeamsDelivery } from './teams-delivery.ts';
import { teamsChatOn } from './teams-env.ts';
import { createTeamsHandlers } from './teams-handlers.ts';
import { createTeamsIdentity } from './teams-identity.ts';
import { createTokenSource } from './teams-token.ts';

/** The messaging endpoint Teams posts activities to (the Azure bot's "messaging endpoint"). */
export const TEAMS_ROUTE = '/api/messages';
/** Bodies larger than this are not activities. */
const MAX_BODY_BYTES = 1_000_000;

/**
 * Builds the Teams platform when its credentials are set (or unauthenticated development mode is
 * asked for; else undefined). The Teams SDK validates every request's JWT against the keys of
 * TEAMS_OPENID_METADATA_URL (issuer, audience = client id, `serviceurl` claim = the activity's
 * serviceUrl) and routes it to our handlers; it runs on our one HTTP server through an adapter.
 */
export function createTeamsPlatform(deps: SurfaceDeps): ChatSurface | undefined {
  const { config } = deps;
  const clientId = config.TEAMS_CLIENT_ID;
  const clientSecret = config.TEAMS_CLIENT_SECRET;
  const tenantId = config.TEAMS_TENANT_ID;
  const credentials = clientId && clientSecret && tenantId ? { clientId, clientSecret, tenantId } : undefined;
  if (!teamsChatOn(config)) return undefined;
  const log = deps.log.child({ platform: 'teams' });

  const token = credentials
    ? createTokenSource({ ...credentials, loginUrl: config.TEAMS_LOGIN_URL, scope: config.TEAMS_BOT_SCOPE })
    : undefined;
  const connector = createConnector({
    token: async () => (token ? token() : undefined),
    limiter: createRateLimiter(),
  });
  const identity = createTeamsIdentity({
    db: deps.db,
    clock: deps.clock,
    connector,
    botId: `28:${clientId ?? 'elevate'}`,
  });
  const ctx: TeamsContext = {
    db: deps.db,
    clock: deps.clock,
    log,
    activations: deps.activations,
    admin: deps.admin,
    alerts: deps.alerts,
    reviews: deps.reviews,
    identity,
    connector,
  };
  const handle = createTeamsHandlers(ctx, { tenantId });

  // The SDK registers its messaging route with the adapter; our server calls it.
  let messaging: HttpRouteHandler | undefined;
  const adapter: IHttpServerAdapter = {
    registerRoute(_method, path, handler) {
      if (path === TEAMS_ROUTE) messaging = handler;
    },
  };
  const app = new App({
    ...(credentials
      ? { clientId: credentials.clientId, tenantId: credentials.tenantId, token: async () => token?.() ?? '' }
      : { dangerouslyAllowUnauthenticatedRequests: true }),
    cloud: withOverrides(PUBLIC, {
      openIdMetadataUrl: config.TEAMS_OPENID_METADATA_URL,
      tokenIssuer: config.TEAMS_TOKEN_ISSUER,
      loginEndpoint: config.TEAMS_LOGIN_URL,
      botScope: config.TEAMS_BOT_SCOPE,
    }),
    serviceUrl: config.TEAMS_SERVICE_URL,
    httpServerAdapter: adapter,
    messagingEndpoint: TEAMS_ROUTE,
    logger: sdkLogger(log),
  });
  const inFlight = new Set<Promise<unknown>>();
  app.use(async (turn) => {
    const work = handle(turn.activity as unknown as IncomingActivity);
    inFlight.add(work);
    try {
      // An invoke's answer is the HTTP response; other activities get an empty 200.
      return ((await work) ?? undefined) as never;
    } finally {
      inFlight.delete(work);
    }
  });

  const route: Route = {
    method: 'POST',
    path: TEAMS_ROUTE,
    handler: async (req, res) => {
      const body = await readJson(req);
      if (body === undefined)
        return sendJson(res, 400, { error: 'bad_request', message: 'expected a JSON activity' });
      if (!messaging) return sendJson(res, 503, { error: 'unavailable', message: 'Teams is starting' });
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter((e): e is [string, string | string[]] => e[1] !== undefined),
      );
      const answer = await messaging({ body, headers });
      writeAnswer(res, answer.status, answer.body);
    },
  };

  return {
    routes: [route],
    delivery: createTeamsDelivery({
      db: deps.db,
      clock: deps.clock,
      activations: deps.activations,
      reviews: deps.reviews,
      alerts: deps.alerts,
      identity,
      connector,
    }),
    async start() {
      await app.initialize();
      if (credentials) {
        log.info(`Teams on (POST ${TEAMS_ROUTE}, tenant ${credentials.tenantId})`);
      } else {
        log.warn(
          `Teams on WITHOUT authentication (TEAMS_ALLOW_UNAUTHENTICATED=true): anyone who reaches POST ${TEAMS_ROUTE} can act as anyone; for local development only`,
        );
      }
    },
    async stop() {
      await Promise.allSettled([...inFlight]);
    },
  };
}

/** The request body as JSON, or undefined when it is not JSON (or too large). */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function writeAnswer(res: ServerResponse, status: number, body: unknown) {
  if (body === undefined || body === null) {
    res.writeHead(status, { 'content-length': 0 });
    res.end();
    return;
  }
  sendJson(res, status, body);
}

/** The SDK's logger interface on top of ours (its debug chatter stays at debug). */
function sdkLogger(log: Logger): ILogger {
  const text = (msg: unknown[]) =>
    msg
      .map((m) => (m instanceof Error ? m.message : typeof m === 'string' ? m : JSON.stringify(m)))
      .join(' ');
  const logger: ILogger = {
    debug: (...msg) => log.debug(text(msg)),
    info: (...msg) => log.debug(text(msg)),
    warn: (...msg) => log.warn(text(msg)),
    error: (...msg) => log.warn(text(msg)),
    trace: (...msg) => log.trace(text(msg)),
    log: (level, ...msg) => log.debug({ level }, text(msg)),
    child: () => logger,
  };
  return logger;
}
