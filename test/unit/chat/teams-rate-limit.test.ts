import { expect, test } from 'vitest';
import { createRateLimiter } from '../../../src/chat/teams/rate-limit.ts';

/** A limiter on a fake clock: sleeping moves time, so the test runs instantly and exactly. */
function fakeTime() {
  let now = 0;
  const limiter = createRateLimiter({
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
  });
  return { limiter, now: () => now };
}

test('at most 7 messages a second and 8 in two seconds per conversation', async () => {
  const { limiter, now } = fakeTime();
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    await limiter.acquire('a:1');
    times.push(now());
  }
  for (let i = 0; i < times.length; i++) {
    const t = times[i] ?? 0;
    expect(times.filter((s) => s > t - 1000 && s <= t).length).toBeLessThanOrEqual(7);
    expect(times.filter((s) => s > t - 2000 && s <= t).length).toBeLessThanOrEqual(8);
  }
  // The first seven go at once; the eighth waits for the window.
  expect(times.slice(0, 7).every((t) => t === 0)).toBe(true);
  expect(times[7]).toBeGreaterThan(0);
});

test('conversations do not wait for each other', async () => {
  const { limiter, now } = fakeTime();
  for (let i = 0; i < 7; i++) await limiter.acquire('a:1');
  for (let i = 0; i < 7; i++) await limiter.acquire('a:2');
  expect(now()).toBe(0);
});

test('a pause (Retry-After) holds the conversation, not the others', async () => {
  const { limiter, now } = fakeTime();
  limiter.pause('a:1', 1500);
  await limiter.acquire('a:2');
  expect(now()).toBe(0);
  await limiter.acquire('a:1');
  expect(now()).toBe(1500);
});

test('60 in 30 seconds', async () => {
  const { limiter, now } = fakeTime();
  for (let i = 0; i < 61; i++) await limiter.acquire('a:1');
  expect(now()).toBeGreaterThanOrEqual(30_000);
});
