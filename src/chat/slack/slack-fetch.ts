import http from 'node:http';
import https from 'node:https';

/** undici's default for a response that does not come (headers or body), which we keep. */
const TIMEOUT_MS = 300_000;
/** Statuses whose response has no body (a Response refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * The `fetch` Bolt and its Web API client are given (`clientOptions.fetch`): every Web API call
 * and every `respond()` to a response_url, sent with node:http(s) over the global keep-alive
 * agents (which follow NODE_USE_ENV_PROXY like Node's fetch). Node's own fetch (undici: web
 * streams, a Request and its signals per call) cost about 0.3 ms more of the server's thread per
 * call than this, and each Slack request makes one or two. What Bolt and the Web API client pass
 * — a URL string, a POST with a string body and plain headers, `redirect: 'error'`, an optional
 * abort signal — is handled here; anything else goes to Node's fetch.
 */
export const slackFetch: typeof fetch = (input, init = {}) => {
  const body = init.body;
  if (
    !(typeof input === 'string' || input instanceof URL) ||
    !(body === undefined || body === null || typeof body === 'string') ||
    !(init.headers === undefined || isPlainObject(init.headers))
  ) {
    return fetch(input, init);
  }
  const url = typeof input === 'string' ? new URL(input) : input;
  const signal = init.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<Response>((resolve, reject) => {
    const headers: Record<string, string | number> = { ...(init.headers as Record<string, string>) };
    if (typeof body === 'string') headers['content-length'] = Buffer.byteLength(body);
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method: init.method ?? 'GET',
      headers,
      timeout: TIMEOUT_MS,
    });
    const abort = () => request.destroy(signal?.reason);
    signal?.addEventListener('abort', abort, { once: true });
    const settle = () => signal?.removeEventListener('abort', abort);
    request.on('timeout', () => request.destroy(new Error(`no answer from ${url.host} within 300 s`)));
    request.on('error', (error) => {
      settle();
      reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: error }));
    });
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && init.redirect === 'error') {
        response.resume();
        settle();
        reject(new TypeError('fetch failed', { cause: new Error(`redirect (${status}) from ${url.href}`) }));
        return;
      }
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', (error) => {
        settle();
        reject(new TypeError('fetch failed', { cause: error }));
      });
      response.on('end', () => {
        settle();
        const pairs: [string, string][] = [];
        const raw = response.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i] as string, raw[i + 1] as string]);
        try {
          resolve(
            new Response(NULL_BODY.has(status) ? null : Buffer.concat(chunks), {
              status,
              statusText: response.statusMessage ?? '',
              headers: pairs,
            }),
          );
        } catch (error) {
          reject(new TypeError('fetch failed', { cause: error }));
        }
      });
    });
    request.end(body ?? undefined);
  });
};

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}
