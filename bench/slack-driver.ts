/**
 * The Slack bench's load generator, in a worker thread of its own (started by `slack.ts`).
 *
 * Why a thread: the bench process also plays Slack's Web API and response_url endpoint for
 * Elevate (views.open, respond posts), and only while Elevate is the target: the bare app makes no
 * Slack calls. When the sender shared that thread, every answer Elevate got waited for the local
 * Slack's work too (its event-loop delay p99 was 22 ms in Elevate's 200/s phase against 5 ms in
 * the bare app's), so Elevate's acks were measured later than they arrived: a bias against
 * Elevate. Here the sender's thread does the same work for both targets: send pre-built, pre-signed
 * requests on schedule (open loop) and note when each HTTP answer is read.
 *
 * Times are `process.hrtime` milliseconds (one monotonic clock for every thread of the process),
 * so the main thread can set them against the moments its local Slack received a modal or a board.
 */
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';

/** One request to send: its body and headers, built and signed by the main thread. */
export interface DriverRequest {
  body: string;
  headers: Record<string, string>;
}

/** A phase to run: `requests[i]` leaves at `start + i * 1000 / rate` (hrtime ms). */
export interface DriverPhase {
  url: string;
  rate: number;
  start: number;
  requests: DriverRequest[];
  /** How long to wait for the last answers after the last request left, ms. */
  drainMs: number;
}

/** What came of request i. */
export interface DriverSample {
  scheduled: number;
  sent: number;
  /** When the whole HTTP answer was read; undefined if it never was. */
  answered?: number;
  status?: number;
  failed?: string;
}

export interface DriverResult {
  samples: DriverSample[];
  /** When the last request left (hrtime ms). */
  lastSent: number;
  /** This thread's event-loop delay over the sending, p99 ms. */
  loopP99: number;
  /** This thread's CPU over the phase, ms. */
  cpuMs: number;
}

/** Milliseconds on the process-wide monotonic clock. */
export const now = () => Number(process.hrtime.bigint()) / 1e6;

async function run(phase: DriverPhase): Promise<DriverResult> {
  const target = new URL(phase.url);
  // Keep-alive, as Slack's client and the harness's fetch do; as many sockets as requests in flight.
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const cpu = process.threadCpuUsage();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const interval = 1000 / phase.rate;
  const samples: DriverSample[] = [];
  const answers: Promise<void>[] = [];
  const send = (request: DriverRequest, sample: DriverSample) =>
    new Promise<void>((resolve) => {
      const req = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          agent,
          headers: { ...request.headers, 'content-length': Buffer.byteLength(request.body) },
        },
        (res) => {
          res.resume(); // the answer is read whole (acks are small), as a client would
          res.on('end', () => {
            sample.answered = now();
            sample.status = res.statusCode;
            resolve();
          });
          res.on('error', (error) => {
            sample.answered = now();
            sample.failed = error.message;
            resolve();
          });
        },
      );
      req.on('error', (error) => {
        sample.answered = now();
        sample.failed = error.message;
        resolve();
      });
      req.end(request.body);
    });

  let i = 0;
  while (i < phase.requests.length) {
    const t = now();
    // Every request whose time has come leaves now, late ones included: the schedule never waits.
    while (i < phase.requests.length && phase.start + i * interval <= t) {
      const sample: DriverSample = { scheduled: phase.start + i * interval, sent: now() };
      samples.push(sample);
      answers.push(send(phase.requests[i] as DriverRequest, sample));
      i++;
    }
    const wait = phase.start + i * interval - now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const lastSent = now();
  loop.disable();
  await Promise.race([Promise.all(answers), new Promise((r) => setTimeout(r, phase.drainMs))]);
  agent.destroy();
  const used = process.threadCpuUsage(cpu);
  return {
    samples,
    lastSent,
    loopP99: loop.percentile(99) / 1e6,
    cpuMs: (used.user + used.system) / 1000,
  };
}

parentPort?.on('message', (phase: DriverPhase) => {
  run(phase).then(
    (result) => parentPort?.postMessage(result),
    (error: unknown) => parentPort?.postMessage({ error: String(error) }),
  );
});
