/**
 * The public HTTP front, in a worker thread of its own (`front-worker.ts`), when Slack runs in HTTP
 * mode. Slack wants every request acked within 3 s and people feel each millisecond of it; the ack
 * itself is trivial, but on the app's thread it waits for whatever else the thread is doing: the
 * queries, renders and Slack calls of earlier requests, the loop's ticks — and, on a busy
 * machine, for the CPU, which the scheduler hands last to a thread that is rarely idle. So the
 * front owns PORT and does what Bolt's HTTPReceiver does for a request before its listener runs
 * — read the body, check the signature and timestamp, parse — and, for the requests every
 * listener acks empty first thing (slash commands, block actions, events), acks right there and
 * hands the parsed body to the Slack platform on the app's thread (`receive`), which runs its
 * listeners as before. Everything else (view submissions, whose answer the listener writes, and
 * every other route: health, metrics, Teams, step-up) is forwarded unchanged to the app's own
 * server on a loopback port.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

/** What the worker is started with. */
export interface FrontOptions {
  /** The public port (0: any) and host. */
  port: number;
  host?: string;
  /** The app's server on 127.0.0.1, where everything not acked here goes. */
  upstreamPort: number;
  /**
   * Slack's events route, acked in the front; its signing secret checks every request, and a
   * timestamp more than `maxSkewSeconds` ahead is refused (Bolt refuses old ones only).
   */
  slack: { path: string; signingSecret: string; maxSkewSeconds: number };
}

/** A message from the worker. */
export type FrontMessage =
  | { type: 'listening'; port: number }
  | { type: 'failed'; message: string }
  | { type: 'closed' }
  | { type: 'log'; level: 'warn' | 'error'; message: string }
  /** A Slack request answered in the front (for the request metrics). */
  | { type: 'request'; status: number; seconds: number }
  /** A verified Slack request, acked: its parsed body for the app. */
  | { type: 'slack'; body: Record<string, unknown>; retryNum?: number; retryReason?: string };

/** The running front. */
export interface Front {
  port: number;
  /** Stops accepting; requests in flight get `graceMs`, then their connections are cut. */
  close(graceMs?: number): Promise<void>;
}

/** Starts the front on `options.port`; resolves once it listens. */
export async function startFront(
  options: FrontOptions,
  deps: {
    log: Logger;
    metrics: Metrics;
    /** A Slack request the front acked (verified, parsed), for the Slack platform to process. */
    receiveSlack(body: Record<string, unknown>, retry: { num?: number; reason?: string }): void;
  },
): Promise<Front> {
  const worker = new Worker(new URL('./front-worker.ts', import.meta.url), { workerData: options });
  let closed: () => void = () => {};
  const listening = new Promise<number>((resolve, reject) => {
    worker.on('message', (message: FrontMessage) => {
      switch (message.type) {
        case 'listening':
          resolve(message.port);
          break;
        case 'failed':
          reject(new Error(`the HTTP front could not listen: ${message.message}`));
          break;
        case 'closed':
          closed();
          break;
        case 'log':
          deps.log[message.level]({ platform: 'slack' }, message.message);
          break;
        case 'request':
          deps.metrics.observeRequest({
            method: 'POST',
            route: options.slack.path,
            status: message.status,
            seconds: message.seconds,
          });
          break;
        case 'slack':
          deps.receiveSlack(message.body, { num: message.retryNum, reason: message.retryReason });
          break;
      }
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the HTTP front exited (${code})`)));
  });
  let port: number;
  try {
    port = await listening;
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  // From here on the front is the process's door: if it dies, nobody reaches the app, which then
  // shuts down (and is restarted by whatever runs it) rather than run unreachable.
  let closing = false;
  worker.on('error', (error) => deps.log.fatal({ err: error }, 'the HTTP front failed'));
  worker.on('exit', (code) => {
    if (closing) return;
    deps.log.fatal(`the HTTP front exited (${code}); shutting down`);
    process.kill(process.pid, 'SIGTERM');
  });
  return {
    port,
    async close(graceMs = 5_000) {
      closing = true;
      const done = new Promise<void>((resolve) => {
        closed = resolve;
        worker.once('exit', () => resolve());
      });
      worker.postMessage({ type: 'close', graceMs });
      await done;
      await worker.terminate();
    },
  };
}
