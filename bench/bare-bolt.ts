/**
 * The baseline of the Slack bench: a bare Bolt app — `App` on an `HTTPReceiver` mounted on a
 * node:http server, as Elevate mounts its own — whose command and action listeners only ack.
 * Run as a child process (`node bench/bare-bolt.ts`) so that it has a process of its own, as
 * Elevate does; it prints `listening <port>` once it takes requests.
 *
 * Environment: SLACK_SIGNING_SECRET (required), PORT (default: any free port).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { App, HTTPReceiver, LogLevel } from '@slack/bolt';

const signingSecret = process.env.SLACK_SIGNING_SECRET;
if (!signingSecret) throw new Error('SLACK_SIGNING_SECRET is required');

const receiver = new HTTPReceiver({
  signingSecret,
  endpoints: '/slack/events',
  processBeforeResponse: false,
  logLevel: LogLevel.ERROR,
});
// botId/botUserId given and no token verification: no auth.test, as after Elevate's one at start.
const app = new App({
  token: 'xoxb-bare-bench',
  botId: 'B0BARE',
  botUserId: 'U0BARE',
  tokenVerificationEnabled: false,
  receiver,
  logLevel: LogLevel.ERROR,
});
app.command(/.*/, async ({ ack }) => {
  await ack();
});
app.action(/.*/, async ({ ack }) => {
  await ack();
});

const server = createServer((req, res) => {
  if (req.method === 'POST' && (req.url ?? '').split('?')[0] === '/slack/events') {
    receiver.requestListener(req, res);
    return;
  }
  res.writeHead(404).end();
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening ${(server.address() as AddressInfo).port}`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
