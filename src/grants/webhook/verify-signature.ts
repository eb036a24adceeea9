// Self-contained on purpose (only node:crypto): a receiver can import this file or copy it.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header that carries `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. */
export const SIGNATURE_HEADER = 'Elevate-Signature';

/** The `Elevate-Signature` value for `rawBody` sent at `timestamp` (unix seconds). */
export function signatureHeader(rawBody: string | Uint8Array, secret: string, timestamp: number): string {
  return `t=${timestamp},v1=${hmac(secret, String(timestamp), rawBody).toString('hex')}`;
}

/**
 * True when `headers` carry a valid `Elevate-Signature` for `rawBody` (the bytes as received,
 * before any JSON parsing) under `secret`, signed within `toleranceSeconds` of `now` in either
 * direction (an old timestamp is a replay; one from the future is a replay prepared in advance).
 * Any one of several `v1=` entries may match, so a sender can sign with two secrets while they rotate.
 */
export function verifyElevateSignature(
  rawBody: string | Uint8Array,
  headers: Headers | Record<string, string | string[] | undefined>,
  secret: string,
  toleranceSeconds = 300,
  now: Date = new Date(),
): boolean {
  const header = headerValue(headers, SIGNATURE_HEADER);
  if (!header || !secret) return false;
  let timestamp: string | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !/^\d{1,12}$/.test(value)) return false; // one timestamp, digits only
      timestamp = value;
    } else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) {
      signatures.push(Buffer.from(value, 'hex'));
    }
  }
  if (timestamp === undefined || signatures.length === 0) return false;
  if (Math.abs(now.getTime() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const expected = hmac(secret, timestamp, rawBody);
  // Every entry is compared (no early exit), each in constant time.
  return signatures.reduce((ok, signature) => timingSafeEqual(signature, expected) || ok, false);
}

function hmac(secret: string, timestamp: string, rawBody: string | Uint8Array): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest();
}

function headerValue(
  headers: Headers | Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const lower = name.toLowerCase();
  const key = Object.keys(headers).find((k) => k.toLowerCase() === lower);
  const value = key === undefined ? undefined : headers[key];
  return Array.isArray(value) ? value.join(',') : value;
}
