/**
 * Teams' limits per bot per conversation (7 a second, 8 in 2 s, 60 in 30 s, 1800 an hour),
 * kept as sliding windows: `acquire` waits until a send fits every window, then records it.
 * One process keeps its own count; several replicas together may exceed it, and the connector's
 * 429 is then answered by the backoff in connector.ts.
 */
export const TEAMS_WINDOWS: readonly (readonly [ms: number, max: number])[] = [
  [1_000, 7],
  [2_000, 8],
  [30_000, 60],
  [3_600_000, 1_800],
];

/**
 * Teams counts a message when it arrives, we when it leaves: a window is kept this much longer, so
 * network jitter never lets an eighth message land inside Teams' second.
 */
const MARGIN_MS = 150;

/** A per-key sliding-window limiter; `now` and `sleep` can be replaced to test it. */
export function createRateLimiter(
  options: {
    windows?: readonly (readonly [number, number])[];
    marginMs?: number;
    now?: () => number;
    sleep?: (ms: number) => Promise<void>;
  } = {},
) {
  const windows = options.windows ?? TEAMS_WINDOWS;
  const margin = options.marginMs ?? MARGIN_MS;
  const longest = Math.max(...windows.map(([ms]) => ms));
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const sent = new Map<string, number[]>();
  // After Teams said "slow down" (429 with Retry-After), nothing goes to that conversation until then.
  const pausedUntil = new Map<string, number>();
  // Sends to one conversation take turns, so two waiters never both claim the last free slot.
  const queues = new Map<string, Promise<void>>();

  /** How long a send to `key` must wait now to fit every window (0: go). */
  function waitFor(key: string): number {
    const at = now();
    const times = (sent.get(key) ?? []).filter((t) => t > at - longest - margin);
    sent.set(key, times);
    let wait = Math.max(0, (pausedUntil.get(key) ?? 0) - at);
    for (const [ms, max] of windows) {
      const inWindow = times.filter((t) => t > at - ms - margin);
      if (inWindow.length >= max) {
        const oldest = inWindow[inWindow.length - max] ?? at;
        wait = Math.max(wait, oldest + ms + margin - at);
      }
    }
    return wait;
  }

  async function take(key: string): Promise<void> {
    for (let wait = waitFor(key); wait > 0; wait = waitFor(key)) await sleep(wait);
    const times = sent.get(key) ?? [];
    times.push(now());
    sent.set(key, times);
  }

  return {
    /** Holds every send to `key` for `ms` (the service asked us to back off). */
    pause(key: string, ms: number): void {
      pausedUntil.set(key, Math.max(pausedUntil.get(key) ?? 0, now() + ms));
    },
    /** Resolves when a message to `key` may go; counts it as sent. */
    acquire(key: string): Promise<void> {
      const turn = (queues.get(key) ?? Promise.resolve()).then(() => take(key));
      const settled = turn.catch(() => {});
      queues.set(key, settled);
      settled.then(() => {
        if (queues.get(key) === settled) queues.delete(key);
      });
      return turn;
    },
  };
}

/** The rate limiter's interface. */
export type RateLimiter = ReturnType<typeof createRateLimiter>;
