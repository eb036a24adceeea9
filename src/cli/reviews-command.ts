import { csvCell } from '../audit/audit-export.ts';
import { DURATION_HINT, parseDuration } from '../elevation/duration.ts';
import { RECURRENCES, REVIEW_DECISIONS } from '../elevation/review.sql.ts';
import type { ReviewInput, ReviewItemView } from '../elevation/review-service.ts';
import {
  type Command,
  commandLineActor,
  parseCommandArgs,
  print,
  UsageError,
  withDatabase,
  writeStdout,
} from './command.ts';
import { formatTable, formatTime } from './table.ts';

/** `elevate reviews start`: an access review campaign, started now in the operator's name. */
export const reviewsStartCommand: Command = {
  name: 'reviews start',
  summary: 'start an access review of one or more roles',
  help: `Usage: elevate reviews start --role ROLE [--role ROLE2] [--reviewers approvers|self|a@x,b@y]
                            [--duration 7d] [--recur weekly|monthly|quarterly] [--unreviewed keep|remove]

Starts an access review now: one item per member eligible for the roles. Each reviewer is told
which members to decide on (Keep or Remove, with a justification). At the end the decisions are
applied: removed members lose their eligibility and are told why and by whom; members nobody
reviewed are kept or removed as --unreviewed says. The admins get the results.

Options:
      --role ROLE         a role to review (repeat for more)
      --reviewers WHO     approvers (the role's approvers, else the admins; the default), self
                          (each member reviews themself), or a comma-separated list of emails
      --duration D        how long it runs (default 7d; ${DURATION_HINT})
      --recur PERIOD      weekly, monthly or quarterly: start the next one a period after this one
      --unreviewed WHAT   keep (the default) or remove the members nobody reviewed
  -h, --help              show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, {
      role: { type: 'string', multiple: true },
      reviewers: { type: 'string' },
      duration: { type: 'string' },
      recur: { type: 'string' },
      unreviewed: { type: 'string' },
    });
    if (!parsed) return 0;
    const v = parsed.values;
    const roleNames = v.role ?? [];
    if (roleNames.length === 0) throw new UsageError(this.name, 'missing --role');
    const who = v.reviewers ?? 'approvers';
    const input: ReviewInput = {
      roleNames,
      reviewers: who === 'approvers' || who === 'self' ? who : 'named',
      reviewerEmails: who === 'approvers' || who === 'self' ? [] : who.split(',').filter(Boolean),
      unreviewed: oneOf(this.name, '--unreviewed', v.unreviewed ?? 'keep', REVIEW_DECISIONS),
      recurrence: v.recur === undefined ? null : oneOf(this.name, '--recur', v.recur, RECURRENCES),
    };
    if (v.duration !== undefined) {
      input.durationMinutes = parseDuration(v.duration);
      if (input.durationMinutes === undefined)
        throw new UsageError(this.name, `--duration "${v.duration}" is not a duration (${DURATION_HINT})`);
    }
    const actor = commandLineActor(env);
    const { review, items } = await withDatabase(env, async ({ services }) => {
      const started = await services.reviews.start(actor, input);
      return services.reviews.get(started.id);
    });
    print(
      `review ${review.id} started: ${items.length} member(s) of ${review.roleNames.join(', ')} to review until ${formatTime(review.endAt)}`,
    );
    return 0;
  },
};

/** `elevate reviews list`: the campaigns, or one campaign's items. */
export const reviewsListCommand: Command = {
  name: 'reviews list',
  summary: "list access reviews, or one review's items",
  help: `Usage: elevate reviews list [REVIEW-ID]

Without an id: the latest access reviews, newest first. With one: its items (member, role,
reviewers, decision and, once it ended, what was done).

Options:
  -h, --help   show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, {}, 1);
    if (!parsed) return 0;
    const [reviewId] = parsed.positionals;
    if (reviewId) {
      const { items } = await withDatabase(env, ({ services }) => services.reviews.get(reviewId));
      if (items.length === 0) {
        print('no members to review');
        return 0;
      }
      const rows = items.map((i) => [
        i.itemId,
        i.principal,
        i.role,
        i.reviewers.join(','),
        i.decision ? `${i.decision} by ${i.decidedBy}` : '-',
        i.outcome ?? '-',
      ]);
      print(formatTable(['ITEM', 'MEMBER', 'ROLE', 'REVIEWERS', 'DECISION', 'OUTCOME'], rows));
      return 0;
    }
    const reviews = await withDatabase(env, ({ services }) => services.reviews.list());
    if (reviews.length === 0) {
      print('no access reviews yet');
      return 0;
    }
    const rows = reviews.map((r) => [
      r.id,
      r.status,
      r.roleNames.join(','),
      r.reviewers === 'named' ? r.reviewerEmails.join(',') : r.reviewers,
      formatTime(r.startAt),
      formatTime(r.endAt),
      r.recurrence ?? 'once',
      r.unreviewed,
    ]);
    print(formatTable(['ID', 'STATUS', 'ROLES', 'REVIEWERS', 'START', 'END', 'RECURS', 'UNREVIEWED'], rows));
    return 0;
  },
};

/** The exported columns, in order; JSONL keys and the CSV header use the same names. */
const FIELDS = [
  'reviewId',
  'itemId',
  'principal',
  'role',
  'reviewers',
  'lastActivatedAt',
  'activations90d',
  'decision',
  'justification',
  'decidedBy',
  'decidedAt',
  'outcome',
] as const;

/**
 * A review's items as JSONL (one object a line) or CSV, with the audit export's cell writer: a
 * justification typed by a reviewer must not run as a spreadsheet formula.
 */
export function reviewExport(items: ReviewItemView[], format: 'csv' | 'jsonl'): string {
  const row = (i: ReviewItemView) => Object.fromEntries(FIELDS.map((f) => [f, i[f]]));
  if (format === 'jsonl') return items.map((i) => `${JSON.stringify(row(i))}\n`).join('');
  const cell = (v: unknown) => csvCell(Array.isArray(v) ? v.join(' ') : v === null ? '' : String(v));
  return [FIELDS.join(','), ...items.map((i) => FIELDS.map((f) => cell(i[f])).join(','))]
    .map((line) => `${line}\r\n`)
    .join('');
}

/** `elevate reviews export`: one review's items and decisions, for auditors. */
export const reviewsExportCommand: Command = {
  name: 'reviews export',
  summary: "export an access review's decisions as CSV or JSONL",
  help: `Usage: elevate reviews export REVIEW-ID --format csv|jsonl

Writes every item of the review to stdout: member, role, reviewers, last activation and
activations in 90 days, decision, justification, who decided and when, and the outcome.

Options:
      --format csv|jsonl   the output format (required)
  -h, --help               show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, { format: { type: 'string' } }, 1);
    if (!parsed) return 0;
    const [reviewId] = parsed.positionals;
    if (!reviewId) throw new UsageError(this.name, 'missing the review id');
    const { format } = parsed.values;
    if (format !== 'csv' && format !== 'jsonl')
      throw new UsageError(
        this.name,
        format === undefined
          ? 'missing --format (csv or jsonl)'
          : `--format must be csv or jsonl, not "${format}"`,
      );
    const { items } = await withDatabase(env, ({ services }) => services.reviews.get(reviewId));
    await writeStdout(reviewExport(items, format));
    return 0;
  },
};

function oneOf<const T extends readonly string[]>(
  command: string,
  option: string,
  value: string,
  allowed: T,
): T[number] {
  if (!allowed.includes(value))
    throw new UsageError(command, `${option} must be ${allowed.join(' or ')}, not "${value}"`);
  return value as T[number];
}
