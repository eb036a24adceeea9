import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { databaseEnv } from '../support/db.ts';
import { freePort } from '../support/slack-harness.ts';

/**
 * Development mode: TEAMS_ALLOW_UNAUTHENTICATED=true without credentials starts Teams with a
 * warning, accepts activities without a token, and answers without one (as the Bot Framework
 * Emulator expects). Production refuses this mode (test/unit/chat/teams-config.test.ts).
 */
test('TEAMS_ALLOW_UNAUTHENTICATED=true: a warning at start, unsigned activities accepted', async () => {
  const received: { path: string; auth: string | undefined; body: string }[] = [];
  const emulator = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push({ path: req.url ?? '', auth: req.headers.authorization, body });
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'm1' }));
    });
  });
  emulator.listen(0, '127.0.0.1');
  await once(emulator, 'listening');
  const serviceUrl = `http://127.0.0.1:${(emulator.address() as AddressInfo).port}/`;
  const dir = await mkdtemp(join(tmpdir(), 'elevate-teams-dev-'));
  const port = await freePort();
  const bin = new URL('../../bin/elevate.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      PORT: String(port),
      LOG_LEVEL: 'info',
      ...databaseEnv(undefined, dir),
      TEAMS_ALLOW_UNAUTHENTICATED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c) => {
    output += c;
  });
  child.stderr?.on('data', (c) => {
    output += c;
  });
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 600; i++) {
      if (
        await fetch(`${url}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(output).toMatch(
      /"level":"warn".*Teams on WITHOUT authentication \(TEAMS_ALLOW_UNAUTHENTICATED=true\)/,
    );
    const answer = await fetch(`${url}/api/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'message',
        id: 'x1',
        channelId: 'emulator',
        serviceUrl,
        from: { id: 'u1', aadObjectId: 'aad-1' },
        recipient: { id: 'bot' },
        conversation: { id: 'c1', conversationType: 'personal' },
        text: 'help',
      }),
    });
    expect(answer.status).toBe(200);
    // The bot asked who the sender is (member lookup) without a token; the emulator has no email
    // for them, so they are told Elevate needs one — and nothing crashed.
    for (let i = 0; i < 50 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(received.map((r) => r.path)).toEqual([
      '/v3/conversations/c1/members/u1',
      '/v3/conversations/c1/activities',
    ]);
    expect(received.every((r) => r.auth === undefined)).toBe(true);
    expect(received[1]?.body).toMatch(/did not share yours/);
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    emulator.close();
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);
