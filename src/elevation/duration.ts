/**
 * Durations as people write them: `30m`, `8h`, `2d`, `1h30m`, or ISO 8601 (`PT1H`, `P2D`).
 * Stored and computed in whole minutes.
 */
const SHORT = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?:in)?)?$/i;
const ISO = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$/i;

/** Minutes in `text`, or undefined when it is not a duration we understand (or is zero). */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  const match = SHORT.exec(trimmed) ?? ISO.exec(trimmed);
  if (!match || trimmed === '' || /^PT?$/i.test(trimmed)) return undefined;
  const [, days, hours, minutes] = match;
  const total = Number(days ?? 0) * 1440 + Number(hours ?? 0) * 60 + Number(minutes ?? 0);
  return total > 0 ? total : undefined;
}

/** The shortest short form of `minutes`: 90 → `1h30m`, 2880 → `2d`. */
export function formatDuration(minutes: number): string {
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  return `${days ? `${days}d` : ''}${hours ? `${hours}h` : ''}${rest ? `${rest}m` : ''}` || '0m';
}

/** The message for a string that is not a duration, shared by every surface. */
export const DURATION_HINT = 'use 30m, 8h, 2d or ISO 8601';

export const MINUTE_MS = 60_000;
