import { expect, test } from 'vitest';
import { startScheduler } from '../../../src/jobs/scheduler.ts';
import { createLogger } from '../../../src/log.ts';

/** Polls until `probe` holds (the schedule ticks every second). */
async function until(probe: () => boolean, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('stop tells the run in hand to claim no more, waits for it, and starts no other', async () => {
  const signals: AbortSignal[] = [];
  let finish = () => {};
  const inHand = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const loop = startScheduler(
    [
      {
        schedule: '* * * * * *',
        job: {
          name: 'batch',
          run: async (stopping) => {
            signals.push(stopping);
            await inHand;
          },
        },
      },
    ],
    createLogger('silent'),
  );
  await until(() => signals.length === 1);
  let stopped = false;
  const stopping = loop.stop().then(() => {
    stopped = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 1_200)); // a tick comes and goes
  expect(signals[0]?.aborted).toBe(true);
  expect(stopped).toBe(false); // the batch in hand is still being finished
  finish();
  await stopping;
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  expect(signals).toHaveLength(1);
});
