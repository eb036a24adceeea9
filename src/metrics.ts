import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { ProviderCall } from './grants/registry.ts';

/**
 * The process's Prometheus metrics in a registry of its own (never prom-client's global one),
 * so several servers — in tests — can live in one process.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const httpRequests = new Counter({
    name: 'elevate_http_requests_total',
    help: 'HTTP requests answered, by route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'elevate_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route.',
    labelNames: ['method', 'route'] as const,
    // Chat platforms give up after 3 s (Slack) and 15 s (Teams): resolve that range well.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15],
    registers: [registry],
  });
  const providerCalls = new Counter({
    name: 'elevate_provider_calls_total',
    help: 'Grant provider calls, by provider, operation and outcome (ok, retryable, permanent).',
    labelNames: ['provider', 'op', 'outcome'] as const,
    registers: [registry],
  });
  const providerRetries = new Counter({
    name: 'elevate_provider_retries_total',
    help: 'Grant provider calls that repeat an earlier failed attempt, by provider and operation.',
    labelNames: ['provider', 'op'] as const,
    registers: [registry],
  });
  const providerDuration = new Histogram({
    name: 'elevate_provider_call_duration_seconds',
    help: 'Time a grant provider call took, by provider and operation.',
    labelNames: ['provider', 'op'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return {
    registry,
    /** Counts one grant provider call (see grants/registry.ts). */
    observeProviderCall(call: ProviderCall): void {
      providerCalls.inc({ provider: call.provider, op: call.op, outcome: call.outcome });
      if (call.attempt > 1) providerRetries.inc({ provider: call.provider, op: call.op });
      providerDuration.observe({ provider: call.provider, op: call.op }, call.seconds);
    },
    /**
     * Counts one answered request. `route` is the route table's path (or `unmatched`), never
     * the raw URL, so label values stay few.
     */
    observeRequest(request: { method: string; route: string; status: number; seconds: number }): void {
      httpRequests.inc({ method: request.method, route: request.route, status: String(request.status) });
      httpDuration.observe({ method: request.method, route: request.route }, request.seconds);
    },
    /** The Prometheus text exposition of every metric. */
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}

/** The metrics of one process. */
export type Metrics = ReturnType<typeof createMetrics>;
