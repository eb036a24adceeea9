import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { slackFetch } from '../../../src/chat/slack/slack-fetch.ts';

let server: Server;
let base: string;
const seen: { method?: string; headers: IncomingMessage['headers']; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      seen.push({ method: req.method, headers: req.headers, body });
      if (req.url === '/api/views.open') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'x-oauth-scopes': 'a,b' });
        res.end(JSON.stringify({ ok: true, echoed: body }));
      } else if (req.url === '/moved') {
        res.writeHead(302, { location: '/api/views.open' }).end();
      } else if (req.url === '/limited') {
        res.writeHead(429, { 'retry-after': '7' }).end('ratelimited');
      } else if (req.url === '/empty') {
        res.writeHead(204).end();
      } else if (req.url === '/slow') {
        setTimeout(() => res.writeHead(200).end('late'), 2_000);
      } else {
        res.writeHead(404).end('no');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

test('a POST as the Web API client sends it: body, headers, status, headers and JSON back', async () => {
  const body = new URLSearchParams({ trigger_id: '1.2.3', view: '{"type":"modal"}' }).toString();
  const response = await slackFetch(`${base}/api/views.open`, {
    method: 'POST',
    headers: { Authorization: 'Bearer xoxb-1', 'Content-Type': 'application/x-www-form-urlencoded' },
    body,
    redirect: 'error',
  });
  expect(response.status).toBe(200);
  expect(response.ok).toBe(true);
  expect(response.headers.get('x-oauth-scopes')).toBe('a,b');
  expect(await response.json()).toEqual({ ok: true, echoed: body });
  const request = seen.at(-1);
  expect(request?.method).toBe('POST');
  expect(request?.headers.authorization).toBe('Bearer xoxb-1');
  expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
  expect(request?.headers['content-length']).toBe(String(Buffer.byteLength(body)));
});

test('error statuses are answers, not failures, as with fetch (429 keeps Retry-After)', async () => {
  const limited = await slackFetch(`${base}/limited`, { method: 'POST', body: 'x' });
  expect(limited.status).toBe(429);
  expect(limited.ok).toBe(false);
  expect(limited.headers.get('retry-after')).toBe('7');
  expect(await limited.text()).toBe('ratelimited');
  expect((await slackFetch(`${base}/empty`, { method: 'POST', body: '' })).status).toBe(204);
});

test("redirect: 'error' refuses a redirect, as fetch does", async () => {
  await expect(slackFetch(`${base}/moved`, { method: 'POST', body: '', redirect: 'error' })).rejects.toThrow(
    TypeError,
  );
});

test('an abort signal ends the request with its reason; a refused connection is a TypeError', async () => {
  const signal = AbortSignal.timeout(100);
  await expect(slackFetch(`${base}/slow`, { method: 'POST', body: '', signal })).rejects.toMatchObject({
    name: 'TimeoutError',
  });
  await expect(slackFetch('http://127.0.0.1:1/api/x', { method: 'POST', body: '' })).rejects.toThrow(
    TypeError,
  );
});
