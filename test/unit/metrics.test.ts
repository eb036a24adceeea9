import { expect, test } from 'vitest';
import { createMetrics } from '../../src/metrics.ts';

test('provider calls, their retries and durations show on /metrics', async () => {
  const metrics = createMetrics();
  const call = { provider: 'postgres', op: 'grant' as const, activationId: 'a', seconds: 0.2 };
  metrics.observeProviderCall({ ...call, attempt: 1, outcome: 'retryable', error: 'timeout' });
  metrics.observeProviderCall({ ...call, attempt: 2, outcome: 'ok' });
  const text = await metrics.render();
  expect(text).toContain(
    'elevate_provider_calls_total{provider="postgres",op="grant",outcome="retryable"} 1',
  );
  expect(text).toContain('elevate_provider_calls_total{provider="postgres",op="grant",outcome="ok"} 1');
  expect(text).toContain('elevate_provider_retries_total{provider="postgres",op="grant"} 1');
  expect(text).toContain('elevate_provider_call_duration_seconds_count{provider="postgres",op="grant"} 2');
});
