import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyElevateSignature } from '../../src/grants/webhook/verify-signature.ts';

/**
 * A receiver for the `webhook` grant provider, standing in for the target system: it checks each
 * event's signature, records it, and answers 200 — at once, after a delay, or only when the test
 * releases it (a call held in flight, to kill the caller meanwhile).
 */

/** One grant or revoke event as it arrived. */
export interface WebhookCall {
  type: 'grant' | 'revoke';
  activationId: string;
  email: string;
  role: string;
  /** The grant's end as Elevate sent it (ISO), null for a permanent one. */
  endAt: string | null;
  /** When the event arrived here (ms since the epoch). */
  receivedAt: number;
  /** Whether it was answered 200; false while held, and for good when the caller went away first. */
  answered: boolean;
}

export interface WebhookTarget {
  /** The URL to give a role's `provider.url`. */
  url: string;
  calls: WebhookCall[];
  callsOf(type: WebhookCall['type'], role?: string): WebhookCall[];
  /** From now on, events of `type` are answered only after `release` (ms: after that delay). */
  hold(type: WebhookCall['type'], ms?: number): void;
  /** Answers every held event and stops holding. */
  release(): void;
  /** Events (of `role`) held open right now; a caller that died no longer counts. */
  held(role?: string): number;
  close(): Promise<void>;
}

/** Starts the receiver; events are signed with the secret in `secret`. */
export async function startWebhookTarget(secret: string): Promise<WebhookTarget> {
  const holding = new Map<WebhookCall['type'], number | undefined>();
  const open = new Set<{ call: WebhookCall; response: ServerResponse }>();

  const answer = (entry: { call: WebhookCall; response: ServerResponse }) => {
    open.delete(entry);
    if (entry.response.destroyed) return;
    entry.call.answered = true;
    entry.response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  };

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (!verifyElevateSignature(body, request.headers, secret)) {
        response.writeHead(401).end('bad signature');
        return;
      }
      const event = JSON.parse(body) as {
        type: WebhookCall['type'];
        activationId: string;
        principal: { email: string };
        role: { name: string };
        endAt: string | null;
      };
      const call: WebhookCall = {
        type: event.type,
        activationId: event.activationId,
        email: event.principal.email,
        role: event.role.name,
        endAt: event.endAt,
        receivedAt: Date.now(),
        answered: false,
      };
      target.calls.push(call);
      const entry = { call, response };
      if (!holding.has(call.type)) return answer(entry);
      open.add(entry);
      // The caller died (kill -9): its connection closes and the call is no longer in flight.
      response.on('close', () => open.delete(entry));
      const delay = holding.get(call.type);
      if (delay !== undefined) setTimeout(() => answer(entry), delay);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  const target: WebhookTarget = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/elevate`,
    calls: [],
    callsOf: (type, role) => target.calls.filter((c) => c.type === type && (!role || c.role === role)),
    hold(type, ms) {
      holding.set(type, ms);
    },
    release() {
      holding.clear();
      for (const entry of [...open]) answer(entry);
    },
    held: (role) =>
      [...open].filter((entry) => !entry.response.destroyed && (!role || entry.call.role === role)).length,
    async close() {
      target.release();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  return target;
}
