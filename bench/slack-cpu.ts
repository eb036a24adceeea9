/**
 * The Slack CPU bench (`npm run bench -- slack-cpu`): what one request of each kind costs the
 * server, measured one request at a time (closed loop: the next request leaves once the previous
 * one's ack and its follow-up — the modal's views.open, the board's response_url post — arrived).
 * Nothing runs in parallel inside the server, so its CPU per request is the work itself, and CPU
 * profiles of it (BENCH_PROBE_PROFILE, one per kind) are not smeared by requests waiting on each
 * other. Latencies on a shared machine say little; CPU time per request is what to compare
 * between versions.
 *
 * Per kind: the main thread's CPU ms per request (`process.threadCpuUsage` in `probe.ts`: where
 * acks are made), the whole process's (all threads, from /proc: with PGlite, its worker thread
 * too), each less what the idle server spends meanwhile (the loop's ticks, measured first), and
 * the serial latency p50 of ack and follow-up.
 *
 * Environment: BENCH_CPU_REQUESTS per kind (400), BENCH_USERS (50), BENCH_ROLES (5),
 * BENCH_KINDS (board,modalCommand,modalClick), BENCH_PROBE_PROFILE (a directory: a CPU profile of
 * the server's main thread per kind, `phase-<n>.cpuprofile`, odd n are the kinds in order).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ACTION } from '../src/chat/slack/ids.ts';
import { startElevate } from '../test/support/slack-harness.ts';
import type { SlackMessage } from '../test/support/slack-workspace.ts';
import { benchPolicy, emailOf, KINDS, type Kind, probeSnapshot } from './slack.ts';
import { ms, summary } from './stats.ts';

const REQUESTS = Number(process.env.BENCH_CPU_REQUESTS ?? 400);
const USERS = Number(process.env.BENCH_USERS ?? 50);
const ROLES = Number(process.env.BENCH_ROLES ?? 5);
const WARMUP = 100;
const IDLE_MS = 5_000;
const PROBE = fileURLToPath(new URL('./probe.ts', import.meta.url));

const users = Array.from({ length: USERS }, (_, i) => `UCPU${String(i + 1).padStart(4, '0')}`);
const roles = Array.from({ length: ROLES }, (_, i) => `bench-role-${i + 1}`);

export async function runSlackCpuBench(): Promise<void> {
  const probeDir = await mkdtemp(join(tmpdir(), 'elevate-bench-cpu-'));
  const probeFile = join(probeDir, 'elevate.jsonl');
  const elevate = await startElevate({
    policy: benchPolicy(users, roles),
    startTimeoutMs: 180_000,
    env: {
      LOG_LEVEL: 'warn',
      NODE_OPTIONS: `--import=${PROBE}`,
      BENCH_PROBE_FILE: probeFile,
      ...(process.env.BENCH_PROBE_PROFILE ? { BENCH_PROBE_PROFILE: process.env.BENCH_PROBE_PROFILE } : {}),
    },
  });
  try {
    const slack = elevate.slack;
    for (const user of users) slack.addUser(user, emailOf(user), user.toLowerCase());
    const pid = childPid('serve');
    // The policy's notices go out first (the outbox), then every user's identity is linked.
    await quiet(() => slack.calls.length);
    const boards = new Map<string, SlackMessage>();
    for (const user of users) {
      await elevate.command(user, '');
      boards.set(
        user,
        await slack.waitFor(`the board of ${user}`, () =>
          slack
            .messagesFor(user)
            .find((m) => m.blocks.some((b) => JSON.stringify(b).includes(ACTION.activate))),
        ),
      );
    }
    const follow = (from: number, method: string) =>
      slack.waitFor(`${method}`, () => slack.calls.slice(from).find((c) => c.method === method), 10_000);

    const one = async (kind: Kind, i: number) => {
      const user = users[i % users.length] as string;
      const role = roles[Math.floor(i / users.length) % roles.length] as string;
      const from = slack.calls.length;
      const t = performance.now();
      const response =
        kind === 'board'
          ? await elevate.command(user, '')
          : kind === 'modalCommand'
            ? await elevate.command(user, `activate ${role}`)
            : await elevate.click(user, boards.get(user) as SlackMessage, ACTION.activate, role);
      const ack = performance.now() - t;
      if (response.status !== 200) throw new Error(`${kind}: HTTP ${response.status}`);
      await follow(from, kind === 'board' ? 'response_url' : 'views.open');
      return { ack, done: performance.now() - t };
    };

    // What the server spends while idle (the loop's ticks), per second: subtracted below.
    await probeSnapshot(pid, probeFile);
    const idleStart = performance.now();
    const idleCpuStart = cpuMs(pid);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleSeconds = (performance.now() - idleStart) / 1000;
    const idleMain = ((await probeSnapshot(pid, probeFile))?.mainThreadCpuMs ?? Number.NaN) / idleSeconds;
    const idleAll = (cpuMs(pid) - idleCpuStart) / idleSeconds;

    const rows: string[] = [];
    for (const kind of KINDS) {
      for (let i = 0; i < WARMUP; i++) await one(kind, i);
      await probeSnapshot(pid, probeFile);
      const started = performance.now();
      const cpuBefore = cpuMs(pid);
      const acks: number[] = [];
      const dones: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const { ack, done } = await one(kind, i);
        acks.push(ack);
        dones.push(done);
      }
      const cpuAll = cpuMs(pid) - cpuBefore;
      const inside = await probeSnapshot(pid, probeFile);
      const seconds = (performance.now() - started) / 1000;
      const main = ((inside?.mainThreadCpuMs ?? Number.NaN) - idleMain * seconds) / REQUESTS;
      const all = (cpuAll - idleAll * seconds) / REQUESTS;
      rows.push(
        `| ${kind} | ${main.toFixed(2)} | ${all.toFixed(2)} | ${ms(summary(acks).p50)} | ${ms(summary(dones).p50)} |`,
      );
    }
    console.log(
      `Slack CPU per request, ${REQUESTS} requests per kind one at a time (${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'})`,
    );
    console.log(
      `idle server: main thread ${idleMain.toFixed(1)} ms/s, all threads ${idleAll.toFixed(1)} ms/s (subtracted below)`,
    );
    console.log('');
    console.log(
      '| kind | main-thread CPU ms | process CPU ms (all threads) | ack p50 ms | follow-up p50 ms |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: |');
    for (const row of rows) console.log(row);
  } finally {
    await rm(probeDir, { recursive: true, force: true });
    await elevate.stop();
  }
}

/** The pid of this process's child whose command line contains `needle` (Linux /proc). */
function childPid(needle: string): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle))
        return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no child process running ${needle}`);
}

/** Waits until `count` has not changed for 3 s (at most 120 s). */
async function quiet(count: () => number): Promise<void> {
  const deadline = performance.now() + 120_000;
  let last = count();
  let since = performance.now();
  while (performance.now() - since < 3_000 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    if (count() !== last) {
      last = count();
      since = performance.now();
    }
  }
}

/** User + system CPU ms of a process so far, all threads (Linux /proc). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await runSlackCpuBench();
