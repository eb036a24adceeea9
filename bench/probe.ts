/**
 * Measurements from inside the server under test, loaded into its process with
 * `node --import ./bench/probe.ts` (the Slack bench sets NODE_OPTIONS); nothing in src/ knows.
 *
 * - the event loop's delay (how late a 1 ms timer fires: how long the loop was kept busy);
 * - the main thread's own CPU time (`process.threadCpuUsage`): work per request that other
 *   processes on a shared machine do not change, unlike latencies;
 * - server-side ack time: from the request's headers being parsed to the response's end
 *   (`http.server.request.start` → `http.server.response.finish` diagnostics channels);
 * - PGlite: statements run, protocol messages sent (PGlite takes each in one
 *   `execProtocolRawSync` call) and the time spent inside those calls (WASM and the JS it calls
 *   back), in whichever thread runs it (Elevate: a worker thread, src/db/pglite-thread.ts).
 *
 * The probe is loaded in every thread (NODE_OPTIONS reaches worker threads: PGlite's, and the HTTP
 * front's, src/http/front.ts, which acks Slack's requests); the main thread's line carries the
 * other threads' numbers under `threads`.
 *
 * BENCH_PROBE_SQL=1 adds the statements by SQL text (the protocol's Parse or Query message).
 * BENCH_PROBE_PROFILE=<dir> writes a V8 CPU profile per interval between two signals
 * (`phase-<n>.cpuprofile`), so a profile shows one phase of load and not the start-up.
 *
 * On SIGUSR2 it appends one JSON line with everything since the previous signal to
 * BENCH_PROBE_FILE (the main thread's numbers, and each other thread's under `threads`) and starts
 * over.
 */
import { subscribe } from 'node:diagnostics_channel';
import { appendFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';

const file = process.env.BENCH_PROBE_FILE;
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();

let acks: number[] = [];
const started = new WeakMap<IncomingMessage, number>();
subscribe('http.server.request.start', (message) => {
  const { request } = message as { request: IncomingMessage };
  if (request.method === 'POST') started.set(request, performance.now());
});
subscribe('http.server.response.finish', (message) => {
  const { request } = message as { request: IncomingMessage; response: ServerResponse };
  const at = started.get(request);
  if (at !== undefined) acks.push(performance.now() - at);
});

/** Protocol messages sent to PGlite (one call each: Parse, Bind, Describe, Execute, Sync…). */
let calls = 0;
/** Statements: Parse (extended protocol) or Query (simple protocol) messages. */
let statements = 0;
/** Time inside those calls (WASM, and the JS it calls back), synchronous on the main thread. */
let statementMs = 0;
let statementMax = 0;
/** BENCH_PROBE_SQL=1: calls and time per SQL text (from the protocol's Parse or Query message). */
const bySql =
  process.env.BENCH_PROBE_SQL === '1' ? new Map<string, { calls: number; ms: number }>() : undefined;
const decoder = new TextDecoder();
const PARSE = 0x50;
const QUERY = 0x51;

/** The SQL text of the first Parse ('P') or Query ('Q') message in a protocol buffer. */
function sqlOf(bytes: unknown): string {
  if (!(bytes instanceof Uint8Array)) return '(not bytes)';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const types: string[] = [];
  for (let at = 0; at + 5 <= bytes.length; ) {
    const type = String.fromCharCode(bytes[at] as number);
    const length = view.getInt32(at + 1);
    types.push(type);
    if (type === 'P' || type === 'Q') {
      let start = at + 5;
      if (type === 'P') start = bytes.indexOf(0, start) + 1; // skip the statement name
      const end = bytes.indexOf(0, start);
      return decoder.decode(bytes.subarray(start, end)).replace(/\s+/g, ' ').slice(0, 160);
    }
    at += 1 + length;
  }
  return `(${types.join('')})`;
}
let pglite = 'not loaded';
try {
  // The same module instance as the server's (resolved from this repository's node_modules).
  const { PGlite } = (await import('@electric-sql/pglite')) as unknown as {
    PGlite: { prototype: Record<string, unknown> };
  };
  const proto = PGlite.prototype as Record<string, (...args: unknown[]) => unknown>;
  const rawSync = proto.execProtocolRawSync;
  if (typeof rawSync === 'function') {
    pglite = 'instrumented';
    proto.execProtocolRawSync = function (this: unknown, ...args: unknown[]) {
      const t = performance.now();
      try {
        return rawSync.apply(this, args);
      } finally {
        const d = performance.now() - t;
        const first = args[0] instanceof Uint8Array ? args[0][0] : undefined;
        calls++;
        if (first === PARSE || first === QUERY) statements++;
        statementMs += d;
        if (d > statementMax) statementMax = d;
        if (bySql) {
          const key = sqlOf(args[0]);
          const entry = bySql.get(key) ?? { calls: 0, ms: 0 };
          entry.calls++;
          entry.ms += d;
          bySql.set(key, entry);
        }
      }
    };
  }
} catch (error) {
  pglite = `not instrumented (${error instanceof Error ? error.message : String(error)})`;
}

/** BENCH_PROBE_PROFILE: one CPU profile per interval between signals. */
const profileDir = process.env.BENCH_PROBE_PROFILE;
const profiler = profileDir && isMainThread ? new Session() : undefined;
let profiles = 0;
if (profiler) {
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.start');
}
async function nextProfile(): Promise<void> {
  if (!profiler) return;
  const { profile } = await profiler.post('Profiler.stop');
  writeFileSync(`${profileDir}/phase-${profiles++}.cpuprofile`, JSON.stringify(profile));
  await profiler.post('Profiler.start');
}

let since = performance.now();
/** CPU time of this thread since the last snapshot. */
let threadCpu = process.threadCpuUsage();

/** This thread's numbers since the last snapshot, and a fresh start. */
function snapshot() {
  const now = performance.now();
  const sorted = acks.sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? null;
  const used = process.threadCpuUsage(threadCpu);
  threadCpu = process.threadCpuUsage();
  const line = {
    seconds: (now - since) / 1000,
    loopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    serverAckMs: { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? null },
    pglite,
    calls,
    statements,
    statementMs,
    statementMaxMs: statementMax,
    cpuMs: (used.user + used.system) / 1000,
    ...(bySql ? { bySql: [...bySql].sort((a, b) => b[1].ms - a[1].ms).slice(0, 40) } : {}),
  };
  loop.reset();
  acks = [];
  calls = 0;
  statements = 0;
  statementMs = 0;
  statementMax = 0;
  bySql?.clear();
  since = now;
  return line;
}

// Loaded in every thread of the process (NODE_OPTIONS reaches worker threads): the main thread
// answers the signal and asks the others (the PGlite thread, the HTTP front) for their numbers.
const threads = new BroadcastChannel('elevate-bench-probe');
threads.unref();
if (isMainThread) {
  let others: unknown[] = [];
  threads.onmessage = (event) => others.push(event.data);
  process.on('SIGUSR2', () => {
    nextProfile().catch((error: unknown) => console.error('probe: profile failed', error));
    others = [];
    threads.postMessage('snapshot');
    const { cpuMs, ...mine } = snapshot();
    setTimeout(() => {
      const line = { ...mine, mainThreadCpuMs: cpuMs, threads: others };
      if (file) appendFileSync(file, `${JSON.stringify(line)}\n`);
    }, 200);
  });
} else {
  threads.onmessage = (event) => {
    if (event.data === 'snapshot') threads.postMessage({ threadId, ...snapshot() });
  };
}
