/**
 * The Slack bench (`npm run bench -- slack`): ack latency and time-to-modal of the real
 * `elevate serve` (a child process, on PGlite or on DATABASE_URL's server, wired to the e2e
 * suite's local Slack) next to a bare Bolt app that only acks (`bare-bolt.ts`, a child process of
 * its own), under the same open-loop load at each rate.
 *
 * Load: requests leave at fixed intervals whatever the answers do (open loop), from a worker
 * thread of their own (`slack-driver.ts`: the bench's main thread plays Slack for Elevate, and a
 * sender sharing its event loop would read Elevate's answers late), a third each of
 * `/elevate` (the board), `/elevate activate <role>` without a reason (the server opens the
 * activation modal pre-filled: views.open) and a click on a board's Activate button (views.open),
 * signed as Slack signs them, each with a fresh trigger_id; both targets get the same requests,
 * built and signed before the phase by one function. Measured per request:
 * - ack latency: from handing the request to the HTTP client until its HTTP answer is read;
 * - time-to-modal: from the same moment until the local Slack API records the views.open
 *   carrying the request's trigger_id (successful calls only);
 * - board answer: for `/elevate`, until the board arrives at the response_url.
 * Errors are non-200 answers and failed connections; timeouts are acks slower than Slack's 3 s
 * (Slack would show the person an error) or never answered; a modal-opening request whose
 * views.open never arrived (or was refused) is a missing modal.
 *
 * Before the load the policy's eligibility notices are let through the outbox and every user types
 * `/elevate` once (identity linked and cached), so the phases measure a steady state; each phase
 * is preceded by one discarded warm-up phase per server. Both servers run `probe.ts` (event-loop
 * delay, server-side ack time, PGlite statements) and their CPU is read from /proc.
 *
 * Environment: BENCH_RATES (default 50,100,200), BENCH_SECONDS per rate (10), BENCH_WARMUP_SECONDS
 * (3, discarded), BENCH_USERS (200), BENCH_ROLES (5), BENCH_KINDS (board,modalCommand,modalClick:
 * the mix), BENCH_CPU_PROF (a directory: the Elevate child writes a V8 CPU profile there at exit),
 * BENCH_PROBE_SQL=1 (PGlite statements by SQL text, from whichever thread runs PGlite),
 * BENCH_PROBE_PROFILE (a directory: a CPU profile of the
 * Elevate child's main thread per phase, phase-<n>.cpuprofile in the order the phases ran).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import postgres from 'postgres';
import { ACTION } from '../src/chat/slack/ids.ts';
import type { FakeSlackCall } from '../test/support/fake-slack-api.ts';
import { type ElevateServer, startElevate } from '../test/support/slack-harness.ts';
import type { SlackMessage } from '../test/support/slack-workspace.ts';
import { type DriverPhase, type DriverRequest, type DriverResult, now } from './slack-driver.ts';
import { START_FLAGS } from './start-flags.ts';
import { ms, summary } from './stats.ts';

const RATES = (process.env.BENCH_RATES ?? '50,100,200').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const WARMUP_RATE = 100;
const USERS = Number(process.env.BENCH_USERS ?? 200);
const ROLES = Number(process.env.BENCH_ROLES ?? 5);
/** Slack shows the person an error when the ack takes longer. */
const SLACK_ACK_LIMIT_MS = 3_000;
/** How long a phase waits for its last answers and modals. */
const DRAIN_MS = 15_000;
const FORM = 'application/x-www-form-urlencoded';
const PROBE = fileURLToPath(new URL('./probe.ts', import.meta.url));
/** The outbox counts as drained after this long without a delivery call. */
const QUIET_MS = 5_000;
const OUTBOX_MAX_MS = 120_000;

/** The requests the Slack benches send, in turn (BENCH_KINDS picks some). */
export type Kind = 'board' | 'modalCommand' | 'modalClick';
export const KINDS = (process.env.BENCH_KINDS ?? 'board,modalCommand,modalClick').split(',') as Kind[];

const users = Array.from({ length: USERS }, (_, i) => `UBENCH${String(i + 1).padStart(4, '0')}`);
/** A bench user's email in the local Slack and the policy file. */
export const emailOf = (user: string) => `${user.toLowerCase()}@bench.example`;
const roles = Array.from({ length: ROLES }, (_, i) => `bench-role-${i + 1}`);

/** The benches' policy file: `roles` on the `none` provider, every one of `users` eligible for each. */
export function benchPolicy(users: string[], roles: string[]): string {
  const lines = ['admins: [admin@bench.example]', 'roles:'];
  for (const role of roles) {
    // Defaults: justification required, no approval, so `activate <role>` alone opens the modal.
    lines.push(
      `  - { name: ${role}, scope: bench, provider: { type: none }, settings: { maxDuration: 4h } }`,
    );
  }
  lines.push('eligibility:');
  for (const user of users) {
    for (const role of roles) lines.push(`  - { principal: ${emailOf(user)}, role: ${role} }`);
  }
  return `${lines.join('\n')}\n`;
}

/** One request of a phase and what came of it. */
interface Sample {
  kind: Kind;
  scheduled: number;
  sent: number;
  /** Ack latency; undefined while unanswered. */
  ackMs?: number;
  status?: number;
  failed?: string;
  trigger: string;
  responseUrl: string;
  modalMs?: number;
  modalError?: string;
  boardMs?: number;
}

/** Builds one request of a kind, with a trigger_id issued at `at` (ms since the epoch). */
type Build = (kind: Kind, user: string, role: string, at: number) => Built;
interface Built extends DriverRequest {
  trigger: string;
  responseUrl: string;
}

interface PhaseResult {
  target: string;
  rate: number;
  samples: Sample[];
  /** Requests per second actually sent. */
  sentRate: number;
  /** Send time minus scheduled time, p99 (the generator keeping pace). */
  lagP99: number;
  /** The sender thread's event-loop delay, p99 ms (a busy sender would inflate every ack). */
  clientLoopP99: number;
  /** The bench's main thread (the local Slack), event-loop delay p99 ms. */
  slackLoopP99: number;
  /** CPU used by the target's server process while requests were sent, in % of one core. */
  serverCpu: number;
  /** CPU used by the bench process (sender and local Slack) over the same time, in % of one core. */
  clientCpu: number;
  /** CPU used on the whole machine, in % of one core. */
  machineCpu: number;
  /**
   * CPU used by everything else on the machine (the machine's minus both servers' and the bench
   * process's), in % of one core: the database server on PostgreSQL, and anything not ours.
   */
  otherCpu: number;
  /** What the probe inside the server saw over the phase (sending and draining). */
  inside: ProbeLine | undefined;
  /** Calls the local Slack received during the phase (sending and draining), by method. */
  slackCalls: Record<string, number>;
}

/** One line of `probe.ts`. */
interface ProbeLine {
  seconds: number;
  loopDelayMs: { p50: number; p99: number; max: number };
  serverAckMs: { n: number; p50: number | null; p99: number | null; max: number | null };
  pglite: string;
  calls: number;
  statements: number;
  statementMs: number;
  statementMaxMs: number;
  /** CPU time of the server's main thread over the interval. */
  mainThreadCpuMs?: number;
  bySql?: [string, { calls: number; ms: number }][];
  /** The process's other threads (Elevate: PGlite's, the HTTP front's), the same numbers each. */
  threads?: (Omit<ProbeLine, 'mainThreadCpuMs' | 'threads'> & { threadId: number; cpuMs: number })[];
}

/** The thread that acked (the one with the most server-side acks: the front's, or the main thread). */
function ackingThread(p: ProbeLine): { name: string; line: Omit<ProbeLine, 'threads'> } {
  let best: { name: string; line: Omit<ProbeLine, 'threads'> } = { name: 'main', line: p };
  for (const t of p.threads ?? []) {
    if (t.serverAckMs.n > best.line.serverAckMs.n) best = { name: `thread ${t.threadId}`, line: t };
  }
  return best;
}

export async function runSlackBench(): Promise<void> {
  const databaseKind = process.env.DATABASE_URL ? 'postgres' : 'pglite';
  const started = performance.now();
  const profileDir = process.env.BENCH_CPU_PROF;
  const probeDir = await mkdtemp(join(tmpdir(), 'elevate-bench-'));
  const probe = (name: string) => ({
    NODE_OPTIONS: [
      `--import=${PROBE}`,
      ...(profileDir && name === 'elevate' ? [`--cpu-prof --cpu-prof-dir=${profileDir}`] : []),
    ].join(' '),
    BENCH_PROBE_FILE: join(probeDir, `${name}.jsonl`),
    ...(process.env.BENCH_PROBE_SQL ? { BENCH_PROBE_SQL: process.env.BENCH_PROBE_SQL } : {}),
    ...(process.env.BENCH_PROBE_PROFILE && name === 'elevate'
      ? { BENCH_PROBE_PROFILE: process.env.BENCH_PROBE_PROFILE }
      : {}),
  });
  const elevate = await startElevate({
    policy: benchPolicy(users, roles),
    startTimeoutMs: 180_000,
    env: { LOG_LEVEL: 'warn', ...probe('elevate') },
    // Elevate as `npm start` runs it; BENCH_SERVER_FLAGS adds Node or V8 flags to try.
    nodeFlags: [...START_FLAGS, ...(process.env.BENCH_SERVER_FLAGS?.split(' ').filter(Boolean) ?? [])],
  });
  let bare: ChildProcess | undefined;
  let driverThread: Worker | undefined;
  try {
    const startedIn = (performance.now() - started) / 1000;
    const slack = elevate.slack;
    for (const user of users) slack.addUser(user, emailOf(user), user.toLowerCase());

    // The local Slack's call log, watched as it is appended: the arrival of each views.open (by
    // trigger_id) and response_url post (by url), on the clock the sender stamps requests with.
    const arrivals = new Map<string, { at: number; error?: string }>();
    const callCounts = new Map<string, number>();
    const calls = slack.calls;
    const append = calls.push.bind(calls);
    calls.push = (...items: FakeSlackCall[]) => {
      const at = now();
      for (const call of items) {
        callCounts.set(call.method, (callCounts.get(call.method) ?? 0) + 1);
        const key =
          call.method === 'views.open'
            ? String(call.args.trigger_id ?? '')
            : call.method === 'response_url'
              ? String(call.args.url ?? '')
              : undefined;
        if (key === undefined || arrivals.has(key)) continue;
        const error = call.error ?? (call.status === 200 ? undefined : `HTTP ${call.status}`);
        arrivals.set(key, { at, ...(error ? { error } : {}) });
      }
      return append(...items);
    };

    // Steady state first: the policy's eligibility notices (one per principal and role) go out
    // through the outbox; wait until the local Slack has seen none for a while.
    const outbox = await quiet(slack.calls, ['chat.postMessage', 'views.publish', 'conversations.open']);

    // Warm-up of identities: every user types /elevate once (users.info, linked principal, the
    // email cached as in steady state) and keeps the board it was shown, to click its buttons.
    const boards = new Map<string, SlackMessage>();
    await inBatches(users, 10, async (user) => {
      const response = await elevate.command(user, '');
      if (response.status !== 200) throw new Error(`warm-up /elevate for ${user}: HTTP ${response.status}`);
      const board = await slack.waitFor(`the board of ${user}`, () =>
        slack
          .messagesFor(user)
          .find((m) => m.blocks.some((b) => JSON.stringify(b).includes(ACTION.activate))),
      );
      boards.set(user, board);
    });

    // One builder for both targets: the fields the harness sends, signed under the same secret.
    const build = requestBuilder(elevate, boards);
    const bareApp = await startBareBolt(elevate.signingSecret, probe('bare'));
    bare = bareApp.child;
    const urls: Record<string, string> = { elevate: `${elevate.url}/slack/events`, bare: bareApp.url };

    const driver = new Worker(new URL('./slack-driver.ts', import.meta.url));
    driverThread = driver;
    const pids: Record<string, number | undefined> = { elevate: childPid('serve'), bare: bare.pid };
    const runPhase = (target: string, rate: number, seconds: number) =>
      phase({
        target,
        url: urls[target] as string,
        build,
        driver,
        rate,
        seconds,
        arrivals,
        pid: pids[target],
        otherPid: pids[target === 'elevate' ? 'bare' : 'elevate'],
        callCounts,
        probeFile: join(probeDir, `${target}.jsonl`),
      });

    // JIT warm-up of both servers, discarded.
    if (WARMUP_SECONDS > 0) {
      await runPhase('elevate', WARMUP_RATE, WARMUP_SECONDS);
      await runPhase('bare', WARMUP_RATE, WARMUP_SECONDS);
    }
    const results: { rate: number; elevate: PhaseResult; bare: PhaseResult }[] = [];
    for (const rate of RATES) {
      const e = await runPhase('elevate', rate, SECONDS);
      const b = await runPhase('bare', rate, SECONDS);
      results.push({ rate, elevate: e, bare: b });
    }
    const failures = (elevate.output().match(/"level":50/g) ?? []).length;
    console.log(report(results, databaseKind, await databaseVersion(), startedIn, outbox, failures));
    if (process.env.BENCH_PROBE_SQL === '1') {
      for (const { rate, elevate: r } of results) {
        console.log(`\nPGlite statements at ${rate}/s, per request (calls, sync ms), by SQL:`);
        const bySql = [r.inside, ...(r.inside?.threads ?? [])].flatMap((t) => t?.bySql ?? []);
        for (const [sql, { calls, ms: spent }] of bySql) {
          const n = r.samples.length;
          console.log(`${(calls / n).toFixed(2).padStart(6)} ${(spent / n).toFixed(3).padStart(7)}  ${sql}`);
        }
      }
    }
  } finally {
    await driverThread?.terminate();
    bare?.kill('SIGTERM');
    await rm(probeDir, { recursive: true, force: true });
    const code = await elevate.stop();
    if (code !== 0) console.error(`elevate serve exited with ${code}:\n${elevate.output().slice(-4000)}`);
  }
}

async function phase(options: {
  target: string;
  url: string;
  build: Build;
  driver: Worker;
  rate: number;
  seconds: number;
  /** Arrivals at the local Slack of views.open (by trigger_id) and response_url posts (by url). */
  arrivals: Map<string, { at: number; error?: string }>;
  pid: number | undefined;
  /** The other server, idle meanwhile. */
  otherPid: number | undefined;
  /** Calls the local Slack received, by method (reset here). */
  callCounts: Map<string, number>;
  probeFile: string;
}): Promise<PhaseResult> {
  const { target, rate, seconds } = options;
  const count = Math.round(rate * seconds);
  const interval = 1000 / rate;
  // Every request is built and signed before the phase (each with a fresh trigger_id, issued at the
  // moment it is scheduled to leave), so the sender only sends.
  const lead = 1500;
  const startWall = Date.now() + lead;
  const samples: Sample[] = [];
  const requests: DriverRequest[] = [];
  for (let i = 0; i < count; i++) {
    const kind = KINDS[i % KINDS.length] as Kind;
    const user = users[i % users.length] as string;
    const role = roles[Math.floor(i / users.length) % roles.length] as string;
    const built = options.build(kind, user, role, startWall + i * interval);
    requests.push({ body: built.body, headers: built.headers });
    samples.push({ kind, scheduled: 0, sent: 0, trigger: built.trigger, responseUrl: built.responseUrl });
  }
  await probeSnapshot(options.pid, options.probeFile); // starts the probe's counts afresh
  options.callCounts.clear();
  const start = now() + (startWall - Date.now());
  const drive: DriverPhase = { url: options.url, rate, start, requests, drainMs: DRAIN_MS };
  const result = new Promise<DriverResult>((resolve, reject) => {
    options.driver.once('message', (message: DriverResult | { error: string }) =>
      'error' in message ? reject(new Error(message.error)) : resolve(message),
    );
  });
  options.driver.postMessage(drive);

  // CPU over the sending: read at the phase's start and when its last request is due.
  const slackLoop = monitorEventLoopDelay({ resolution: 1 });
  await sleepUntil(start);
  slackLoop.enable();
  const serverCpuStart = cpuSeconds(options.pid);
  const idleServerCpuStart = cpuSeconds(options.otherPid);
  const machineStart = machineJiffies();
  const clientCpuStart = process.cpuUsage();
  await sleepUntil(start + (count - 1) * interval);
  slackLoop.disable();
  const sendingSeconds = ((count - 1) * interval) / 1000 || 1;
  const serverCpu = (100 * (cpuSeconds(options.pid) - serverCpuStart)) / sendingSeconds;
  const idleServerCpu = (100 * (cpuSeconds(options.otherPid) - idleServerCpuStart)) / sendingSeconds;
  const clientUsage = process.cpuUsage(clientCpuStart);
  const clientCpu = (clientUsage.user + clientUsage.system) / 1e4 / sendingSeconds;
  const machineEnd = machineJiffies();
  const machineCpu =
    100 *
      os.cpus().length *
      (1 - (machineEnd.idle - machineStart.idle) / (machineEnd.total - machineStart.total)) || Number.NaN;

  // Every answer (or the drain deadline), then for Elevate every modal and board.
  const driven = await result;
  for (const [i, d] of driven.samples.entries()) {
    const sample = samples[i] as Sample;
    sample.scheduled = d.scheduled;
    sample.sent = d.sent;
    if (d.answered !== undefined) sample.ackMs = d.answered - d.sent;
    if (d.status !== undefined) sample.status = d.status;
    if (d.failed !== undefined) sample.failed = d.failed;
  }
  const deadline = performance.now() + DRAIN_MS;
  const followUp = (s: Sample) => options.arrivals.get(s.kind === 'board' ? s.responseUrl : s.trigger);
  if (target === 'elevate') {
    while (performance.now() < deadline && samples.some((s) => pendingFollowUp(s) && !followUp(s))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const s of samples) {
      const arrival = followUp(s);
      if (!arrival) continue;
      if (s.kind === 'board') s.boardMs = arrival.at - s.sent;
      else if (arrival.error) s.modalError = arrival.error;
      else s.modalMs = arrival.at - s.sent;
    }
  }
  const inside = await probeSnapshot(options.pid, options.probeFile);
  const slackCalls = Object.fromEntries(options.callCounts);
  for (const s of samples) {
    options.arrivals.delete(s.trigger);
    options.arrivals.delete(s.responseUrl);
  }
  await settle(options.pid);
  const first = samples[0]?.sent ?? 0;
  return {
    target,
    rate,
    samples,
    sentRate: samples.length / ((driven.lastSent - first) / 1000 || 1),
    lagP99: summary(samples.map((s) => s.sent - s.scheduled)).p99,
    clientLoopP99: driven.loopP99,
    slackLoopP99: slackLoop.percentile(99) / 1e6,
    serverCpu,
    clientCpu,
    machineCpu,
    otherCpu: machineCpu - serverCpu - idleServerCpu - clientCpu,
    inside,
    slackCalls,
  };
}

/** Sleeps until `at` on the `now()` clock. */
async function sleepUntil(at: number): Promise<void> {
  const wait = at - now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

function pendingFollowUp(s: Sample): boolean {
  if (s.ackMs === undefined || s.failed || s.status !== 200) return false;
  if (s.kind === 'board') return s.boardMs === undefined;
  return s.modalMs === undefined && s.modalError === undefined;
}

/**
 * Waits until no call of `methods` has reached the local Slack for QUIET_MS (the loop delivers
 * every 2 s), at most OUTBOX_MAX_MS; returns how many were made and how long it took.
 */
async function quiet(calls: FakeSlackCall[], methods: string[]): Promise<{ count: number; seconds: number }> {
  const started = performance.now();
  const count = () => calls.filter((c) => methods.includes(c.method)).length;
  let last = count();
  let lastChange = performance.now();
  while (performance.now() - lastChange < QUIET_MS && performance.now() - started < OUTBOX_MAX_MS) {
    await new Promise((r) => setTimeout(r, 250));
    const now = count();
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    }
  }
  return { count: last, seconds: (lastChange - started) / 1000 };
}

/** Asks the probe in `pid` for its numbers since the last ask (SIGUSR2) and reads them. */
export async function probeSnapshot(pid: number | undefined, file: string): Promise<ProbeLine | undefined> {
  if (pid === undefined) return undefined;
  const lines = async () => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  const before = (await lines()).length;
  process.kill(pid, 'SIGUSR2');
  // The server answers when its event loop gets to it, which can take a while when it is overloaded.
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    const now = await lines();
    if (now.length > before) return JSON.parse(now[now.length - 1] as string) as ProbeLine;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/**
 * Waits until the server has finished the work its acks left behind (under 20 % of a core over
 * half a second; at most 30 s), so that a phase does not run beside the previous one's backlog.
 */
async function settle(pid: number | undefined): Promise<void> {
  const deadline = performance.now() + 30_000;
  do {
    const before = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 500));
    if (!((cpuSeconds(pid) - before) / 0.5 > 0.2)) return;
  } while (performance.now() < deadline);
}

/** User + system CPU seconds of a process so far (Linux /proc; NaN elsewhere). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100)
  } catch {
    return Number.NaN;
  }
}

/** Jiffies of the whole machine, all and idle (Linux /proc/stat; NaN elsewhere). */
function machineJiffies(): { total: number; idle: number } {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
      .trim()
      .split(/\s+/)
      .slice(1, 9) // user nice system idle iowait irq softirq steal (guest time is inside user)
      .map(Number);
    return { total: fields.reduce((a, b) => a + b, 0), idle: (fields[3] ?? 0) + (fields[4] ?? 0) };
  } catch {
    return { total: Number.NaN, idle: Number.NaN };
  }
}

/** The pid of this process's child whose command line contains `needle` (Linux /proc). */
function childPid(needle: string): number | undefined {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== process.pid) continue;
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return undefined;
}

/** Runs `work` over `items`, at most `concurrency` at a time. */
async function inBatches<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < items.length; i = next++) await work(items[i] as T);
    }),
  );
}

async function startBareBolt(
  signingSecret: string,
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [new URL('./bare-bolt.ts', import.meta.url).pathname], {
    env: {
      PATH: process.env.PATH ?? '',
      SLACK_SIGNING_SECRET: signingSecret,
      NODE_ENV: 'production',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  for await (const line of lines) {
    const port = /^listening (\d+)$/.exec(line)?.[1];
    if (port) {
      clearTimeout(timer);
      return { child, url: `http://127.0.0.1:${port}/slack/events` };
    }
  }
  clearTimeout(timer);
  await once(child, 'exit').catch(() => {});
  throw new Error(`the bare Bolt app did not start (exit ${child.exitCode})`);
}

/**
 * The requests of the load, for both targets: field for field what the harness's `command` and
 * `click` send (form-encoded command; `payload=` block_actions on an ephemeral board), signed the
 * same way, with a fresh trigger_id and response_url from the local Slack.
 */
function requestBuilder(elevate: ElevateServer, boards: Map<string, SlackMessage>): Build {
  const slack = elevate.slack;
  const signed = (body: string) => {
    const timestamp = Math.floor(Date.now() / 1000);
    return {
      body,
      headers: {
        'content-type': FORM,
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': elevate.sign(body, timestamp),
      },
    };
  };
  const userObject = (user: string) => ({
    id: user,
    username: slack.api.users.get(user)?.name ?? user.toLowerCase(),
    name: slack.api.users.get(user)?.name ?? user.toLowerCase(),
    team_id: slack.api.team.id,
  });
  return (kind, user, role, at) => {
    const trigger = slack.trigger(user, at);
    const responseUrl = slack.responseUrl(user);
    if (kind !== 'modalClick') {
      const body = new URLSearchParams({
        token: 'verification-token-unused',
        team_id: slack.api.team.id,
        team_domain: 'fake',
        channel_id: slack.dm(user),
        channel_name: 'directmessage',
        user_id: user,
        user_name: slack.api.users.get(user)?.name ?? user.toLowerCase(),
        command: '/elevate',
        text: kind === 'board' ? '' : `activate ${role}`,
        api_app_id: 'A0ELEVATE',
        is_enterprise_install: 'false',
        response_url: responseUrl,
        trigger_id: trigger,
      }).toString();
      return { ...signed(body), trigger, responseUrl };
    }
    const board = boards.get(user) as SlackMessage;
    const block = board.blocks.find((b) => JSON.stringify(b).includes(`"value":"${role}"`));
    const button = findButton(board, role);
    const payload = {
      type: 'block_actions',
      team: { id: slack.api.team.id, domain: 'fake' },
      user: userObject(user),
      api_app_id: 'A0ELEVATE',
      token: 'verification-token-unused',
      trigger_id: trigger,
      is_enterprise_install: false,
      enterprise: null,
      response_url: responseUrl,
      container: { type: 'message', message_ts: board.ts, channel_id: slack.dm(user), is_ephemeral: true },
      channel: { id: slack.dm(user), name: 'directmessage' },
      actions: [
        {
          action_id: ACTION.activate,
          block_id: String(block?.block_id ?? ''),
          type: 'button',
          action_ts: (at / 1000).toFixed(6),
          value: role,
          ...(button?.text ? { text: button.text } : {}),
        },
      ],
    };
    return {
      ...signed(new URLSearchParams({ payload: JSON.stringify(payload) }).toString()),
      trigger,
      responseUrl,
    };
  };
}

/** The Activate button for `role` on a board. */
function findButton(board: SlackMessage, role: string): { text?: unknown } | undefined {
  for (const block of board.blocks) {
    const elements = [
      ...((block.elements as Record<string, unknown>[] | undefined) ?? []),
      ...(block.accessory ? [block.accessory as Record<string, unknown>] : []),
    ];
    const found = elements.find((e) => e.action_id === ACTION.activate && e.value === role);
    if (found) return found;
  }
  return undefined;
}

async function databaseVersion(): Promise<string> {
  const url = process.env.DATABASE_URL;
  if (!url) return 'PGlite (embedded PostgreSQL in WASM, in the server process)';
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ v: string }[]>`select current_setting('server_version') as v`;
    return `PostgreSQL ${row?.v ?? '?'} (DATABASE_URL, ${new URL(url).hostname})`;
  } finally {
    await sql.end();
  }
}

function report(
  results: { rate: number; elevate: PhaseResult; bare: PhaseResult }[],
  databaseKind: string,
  database: string,
  startedIn: number,
  outbox: { count: number; seconds: number },
  serverErrors: number,
): string {
  const cpus = os.cpus();
  const out: string[] = [];
  const row = (cells: unknown[]) => out.push(`| ${cells.join(' | ')} |`);
  out.push(
    `Slack bench — Elevate (${databaseKind}) and a bare Bolt app that only acks, same open-loop load, ${SECONDS} s per rate`,
  );
  out.push(
    `load: ${KINDS.map((k) => KIND_LABEL[k]).join(', ')}, in turn; ${USERS} Slack users × ${ROLES} roles`,
  );
  out.push(
    `machine: ${cpus.length}× ${cpus[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}; database: ${database}`,
  );
  out.push('');
  row([
    'rate /s',
    'Elevate ack p50 / p99 ms',
    'bare Bolt ack p50 / p99 ms',
    'p99 ratio',
    'time-to-modal p50 / p99 ms',
    'errors / timeouts / missing modals (Elevate)',
    'errors / timeouts (bare)',
  ]);
  row(['---:', '---:', '---:', '---:', '---:', '---:', '---:']);
  const checks: string[] = [];
  for (const { rate, elevate, bare } of results) {
    const e = acks(elevate);
    const b = acks(bare);
    const modal = modalTimes(elevate);
    const ratio = e.p99 / b.p99;
    row([
      rate,
      `${ms(e.p50)} / ${ms(e.p99)}`,
      `${ms(b.p50)} / ${ms(b.p99)}`,
      `${ratio.toFixed(2)}×`,
      `${ms(modal.p50)} / ${ms(modal.p99)}`,
      `${e.errors} / ${e.timeouts} / ${missingModals(elevate)}`,
      `${b.errors} / ${b.timeouts}`,
    ]);
    checks.push(`ack p99 ratio at ${rate}/s ${ratio.toFixed(2)}× (${ratio <= 1.5 ? 'met' : 'MISSED'})`);
    if (rate === 100) {
      const met = modal.p99 < 150 && missingModals(elevate) === 0;
      checks.push(`time-to-modal p99 at 100/s ${ms(modal.p99)} ms (${met ? 'met' : 'MISSED'})`);
    }
  }
  out.push('');
  out.push(`targets (ack p99 ≤ 1.5× bare; time-to-modal p99 < 150 ms at 100/s): ${checks.join('; ')}`);
  out.push('');
  out.push('Inside the servers (probe.ts in each process; whole phase, draining included):');
  out.push('');
  row([
    'rate /s',
    'target',
    'server CPU (all threads)',
    'CPU ms per request: main thread / other threads',
    'server-side ack p50 / p99 ms (acking thread)',
    'event-loop delay p99 / max ms: main thread; acking thread',
    'PGlite statements / ms per request',
    'modal p99 via command / click ms',
    'board answer p50 / p99 ms',
  ]);
  row(['---:', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
  for (const { rate, elevate, bare } of results) {
    for (const r of [elevate, bare]) {
      const isElevate = r.target === 'elevate';
      const p = r.inside;
      const n = r.samples.length;
      const perRequest = (value: number) => (value / n).toFixed(1);
      const modalOf = (kind: Kind) => modalTimes(r, kind).p99;
      const board = summary(r.samples.filter((s) => s.boardMs !== undefined).map((s) => s.boardMs as number));
      const acking = p ? ackingThread(p) : undefined;
      const others = p?.threads?.map((t) => (t.cpuMs / n).toFixed(2)).join(' + ');
      const statements = p ? p.statements + (p.threads ?? []).reduce((sum, t) => sum + t.statements, 0) : 0;
      const statementMs = p
        ? p.statementMs + (p.threads ?? []).reduce((sum, t) => sum + t.statementMs, 0)
        : 0;
      row([
        rate,
        isElevate ? 'Elevate' : 'bare Bolt',
        pct(r.serverCpu),
        p?.mainThreadCpuMs === undefined
          ? '—'
          : `${(p.mainThreadCpuMs / n).toFixed(2)}${others ? ` / ${others}` : ''}`,
        acking
          ? `${ms(acking.line.serverAckMs.p50 ?? Number.NaN)} / ${ms(acking.line.serverAckMs.p99 ?? Number.NaN)} (${acking.name})`
          : '—',
        p && acking
          ? `${ms(p.loopDelayMs.p99)} / ${ms(p.loopDelayMs.max)}${acking.name === 'main' ? '' : `; ${ms(acking.line.loopDelayMs.p99)} / ${ms(acking.line.loopDelayMs.max)}`}`
          : '—',
        isElevate && statements ? `${perRequest(statements)} / ${perRequest(statementMs)}` : '—',
        isElevate ? `${ms(modalOf('modalCommand'))} / ${ms(modalOf('modalClick'))}` : '—',
        isElevate ? `${ms(board.p50)} / ${ms(board.p99)}` : '—',
      ]);
    }
  }
  out.push('');
  out.push(
    'The load generator (the bench process: the sender in a worker thread, the local Slack on its main thread):',
  );
  out.push('');
  row([
    'rate /s',
    'target',
    'sent (achieved /s)',
    'send lag p99 ms',
    'ack max ms',
    'bench process CPU',
    'event-loop delay p99 ms: sender / local Slack',
    `machine CPU (of ${cpus.length * 100} %)`,
    'other processes CPU',
  ]);
  row(['---:', '---', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
  for (const { rate, elevate, bare } of results) {
    for (const r of [elevate, bare]) {
      row([
        rate,
        r.target === 'elevate' ? 'Elevate' : 'bare Bolt',
        `${r.samples.length} (${r.sentRate.toFixed(1)})`,
        ms(r.lagP99),
        ms(acks(r).max),
        pct(r.clientCpu),
        `${ms(r.clientLoopP99)} / ${ms(r.slackLoopP99)}`,
        pct(r.machineCpu),
        pct(r.otherCpu),
      ]);
    }
  }
  // In a bare phase nothing else of ours runs (no database work): CPU used by other processes
  // there means the machine was shared, and every number of the run is suspect.
  const busiest = Math.max(...results.map((r) => r.bare.otherCpu).filter(Number.isFinite));
  if (busiest > 25) {
    out.push('');
    out.push(
      `WARNING: other processes used up to ${busiest.toFixed(0)} % CPU during the bare phases: the machine was not quiet; run again.`,
    );
  }
  out.push('');
  out.push(
    `Slack Web API calls made by Elevate per phase: ${results
      .map(
        ({ rate, elevate: r }) =>
          `${rate}/s: ${
            Object.entries(r.slackCalls)
              .sort((a, b) => b[1] - a[1])
              .map(([method, n]) => `${method} ${n}`)
              .join(', ') || 'none'
          }`,
      )
      .join('; ')}`,
  );
  const reasons = new Map<string, number>();
  for (const { rate, elevate, bare } of results) {
    for (const r of [elevate, bare]) {
      for (const s of r.samples) {
        if (s.ackMs === undefined || (!s.failed && s.status === 200)) continue;
        const key = `${r.target} at ${rate}/s: ${s.failed ?? `HTTP ${s.status}`}`;
        reasons.set(key, (reasons.get(key) ?? 0) + 1);
      }
      for (const s of r.samples) {
        if (!s.modalError) continue;
        const key = `${r.target} at ${rate}/s: views.open answered ${s.modalError}`;
        reasons.set(key, (reasons.get(key) ?? 0) + 1);
      }
    }
  }
  if (reasons.size > 0) {
    out.push('');
    out.push(`errors: ${[...reasons].map(([reason, n]) => `${reason} (${n})`).join('; ')}`);
  }
  out.push('');
  out.push(
    `server start ${startedIn.toFixed(1)} s (migrations, policy file); the outbox drained before the load (${outbox.count} Slack calls for the policy's notices, ${outbox.seconds.toFixed(0)} s); error lines in the server log: ${serverErrors}`,
  );
  return out.join('\n');
}

const KIND_LABEL: Record<Kind, string> = {
  board: '`/elevate` (board)',
  modalCommand: '`/elevate activate <role>` without a reason (opens the modal)',
  modalClick: 'Activate clicks on the board (open the modal)',
};

/** Time-to-modal of the modal-opening requests (of one kind, or both). */
function modalTimes(r: PhaseResult, kind?: Kind) {
  return summary(
    r.samples
      .filter((s) => s.kind !== 'board' && (kind === undefined || s.kind === kind) && s.modalMs !== undefined)
      .map((s) => s.modalMs as number),
  );
}

const pct = (value: number) => (Number.isFinite(value) ? `${value.toFixed(0)} %` : '—');

/** Ack statistics of a phase; an unanswered request counts as a timeout with an infinite latency. */
function acks(r: PhaseResult) {
  const latencies = r.samples.map((s) => (s.ackMs === undefined ? Number.POSITIVE_INFINITY : s.ackMs));
  const errors = r.samples.filter((s) => s.ackMs !== undefined && (s.failed || s.status !== 200)).length;
  const timeouts = r.samples.filter((s) => s.ackMs === undefined || s.ackMs > SLACK_ACK_LIMIT_MS).length;
  return { ...summary(latencies), errors, timeouts };
}

/** Modal-opening requests that were acked but whose views.open never succeeded. */
function missingModals(r: PhaseResult): number {
  return r.samples.filter(
    (s) => s.kind !== 'board' && s.status === 200 && !s.failed && s.modalMs === undefined,
  ).length;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await runSlackBench();
