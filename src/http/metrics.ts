import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

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
  return {
    registry,
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
