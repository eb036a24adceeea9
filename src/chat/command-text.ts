import { parseDuration } from '../elevation/duration.ts';

/** What the person typed after the command (`/elevate …` in Slack, a message in Teams). */
export type Command =
  | { verb: 'board' | 'help' | 'approvals' | 'admin' }
  | { verb: 'activate'; roleName?: string; durationMinutes?: number; justification?: string }
  | { verb: 'unknown'; text: string; suggestion?: string };

const VERBS = ['status', 'help', 'approvals', 'admin', 'activate'] as const;

/** Parses command text; `status` and nothing both mean the board. Pure, shared by every platform. */
export function parseCommand(text: string): Command {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [first, ...rest] = words;
  if (!first || first.toLowerCase() === 'status') return { verb: 'board' };
  const verb = first.toLowerCase();
  if (verb === 'help' || verb === 'approvals' || verb === 'admin') return { verb };
  if (verb === 'activate') {
    const [roleName, second, ...reason] = rest;
    // The duration is optional: a second word that is not a duration starts the reason.
    const minutes = second ? parseDuration(second) : undefined;
    const words = minutes === undefined && second ? [second, ...reason] : reason;
    return {
      verb: 'activate',
      roleName: roleName?.toLowerCase(),
      durationMinutes: minutes,
      justification: words.join(' ') || undefined,
    };
  }
  const nearest = VERBS.map((v) => ({ v, d: distance(v, verb) })).sort((a, b) => a.d - b.d)[0];
  return { verb: 'unknown', text: first, suggestion: nearest && nearest.d <= 2 ? nearest.v : undefined };
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        (row[j] ?? 0) + 1,
        (next[j - 1] ?? 0) + 1,
        (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length] ?? 0;
}
