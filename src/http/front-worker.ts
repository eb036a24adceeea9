/**
 * The worker side of `front.ts`: the public HTTP server. Slack's slash commands, button clicks and
 * events are verified and acked here, as Bolt's HTTPReceiver does it (its own functions), and
 * handed to the app's thread; every other request — Slack's view submissions and anything else
 * whose answer the app writes, and every other route — is forwarded to the app's server on
 * loopback as it came. Not imported by anything; started as a worker thread.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
// Bolt's receiver functions (no package `exports` map; the whole package costs ~40 MB here).
import * as bolt from '@slack/bolt/dist/receivers/HTTPModuleFunctions.js';
import type { FrontMessage, FrontOptions } from './front.ts';

const port = parentPort;
if (!port) throw new Error('front-worker.ts runs as a worker thread');
const options = workerData as FrontOptions;
const post = (message: FrontMessage) => port.postMessage(message);

const upstream = new http.Agent({ keepAlive: true });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Sends the request on to the app's server (with `body` when it was read already) and its answer back. */
function forward(req: IncomingMessage, res: ServerResponse, body?: Buffer): void {
  const headers = { ...req.headers };
  for (const name of HOP_BY_HOP) delete headers[name];
  if (body) headers['content-length'] = String(body.length);
  const onward = http.request(
    {
      host: '127.0.0.1',
      port: options.upstreamPort,
      method: req.method,
      path: req.url,
      headers,
      agent: upstream,
    },
    (answer) => {
      const answerHeaders = { ...answer.headers };
      for (const name of HOP_BY_HOP) delete answerHeaders[name];
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answerHeaders);
      answer.pipe(res);
    },
  );
  onward.on('error', (error) => {
    post({
      type: 'log',
      level: 'error',
      message: `forwarding ${req.method} ${req.url} failed: ${error.message}`,
    });
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  req.on('aborted', () => onward.destroy());
  if (body) onward.end(body);
  else req.pipe(onward);
}

/** Slack's commands, clicks and events: acked at once and handed over; the rest forwarded. */
async function slack(req: IncomingMessage, res: ServerResponse, slackOptions: FrontOptions['slack']) {
  // Answers given here count in the request metrics; forwarded ones are counted by the app's server.
  const started = process.hrtime.bigint();
  let forwarded = false;
  res.on('finish', () => {
    if (forwarded) return;
    post({
      type: 'request',
      status: res.statusCode,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    });
  });
  // Bolt refuses old timestamps only; one from the future is a replay prepared in advance.
  const ts = Number(req.headers['x-slack-request-timestamp']);
  if (Number.isFinite(ts) && ts > Date.now() / 1000 + slackOptions.maxSkewSeconds) {
    bolt.buildNoBodyResponse(res, 401);
    return;
  }
  let buffered: Awaited<ReturnType<typeof bolt.parseAndVerifyHTTPRequest>>;
  try {
    buffered = await bolt.parseAndVerifyHTTPRequest(
      { enabled: true, signingSecret: slackOptions.signingSecret, bodyLimit: bolt.defaultBodyLimit },
      req,
    );
  } catch (error) {
    const raw = error as { type?: string; statusCode?: number; message?: string };
    if (bolt.isRawBodyError(error) && (raw.type === 'entity.too.large' || raw.statusCode === 413)) {
      post({ type: 'log', level: 'warn', message: 'Slack request body exceeded the maximum allowed size' });
      bolt.buildNoBodyResponse(res, 413);
      return;
    }
    post({
      type: 'log',
      level: 'warn',
      message: `Failed to parse and verify the request data: ${raw.message}`,
    });
    bolt.buildNoBodyResponse(res, 401);
    return;
  }
  let body: Record<string, unknown>;
  try {
    body = bolt.parseHTTPRequestBody(buffered);
  } catch (error) {
    post({ type: 'log', level: 'warn', message: `Malformed request body: ${(error as Error).message}` });
    bolt.buildNoBodyResponse(res, 400);
    return;
  }
  if (body.ssl_check === '1') {
    bolt.buildSSLCheckResponse(res);
    return;
  }
  if (body.type === 'url_verification') {
    bolt.buildUrlVerificationResponse(res, body);
    return;
  }
  // These are acked empty by every listener, first thing (events by Bolt itself): the ack is
  // the same now, and the work follows on the app's thread.
  const ackFirst =
    typeof body.command === 'string' || body.type === 'block_actions' || body.type === 'event_callback';
  if (!ackFirst) {
    forwarded = true;
    forward(req, res, buffered.rawBody);
    return;
  }
  bolt.buildContentResponse(res, undefined);
  post({
    type: 'slack',
    body,
    retryNum: bolt.extractRetryNumFromHTTPRequest(req),
    retryReason: bolt.extractRetryReasonFromHTTPRequest(req),
  });
}

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (options.slack && req.method === 'POST' && path === options.slack.path) {
    slack(req, res, options.slack).catch((error: unknown) => {
      post({ type: 'log', level: 'error', message: `Slack request failed: ${(error as Error).message}` });
      if (!res.headersSent) bolt.buildNoBodyResponse(res, 500);
    });
    return;
  }
  forward(req, res);
});

server.on('error', (error) => post({ type: 'failed', message: error.message }));
server.listen(options.port, options.host, () => {
  post({ type: 'listening', port: (server.address() as AddressInfo).port });
});

port.on('message', (message: { type: 'close'; graceMs: number }) => {
  if (message.type !== 'close') return;
  const timer = setTimeout(() => server.closeAllConnections(), message.graceMs);
  server.close(() => {
    clearTimeout(timer);
    upstream.destroy();
    post({ type: 'closed' });
  });
  server.closeIdleConnections();
});
