import { open } from 'node:fs/promises';
import {
  type Command,
  CommandFailure,
  parseCommandArgs,
  print,
  UsageError,
  withDatabase,
  writeStdout,
} from './command.ts';

/** `elevate audit verify`: recomputes the hash chain; exit 1 when it is broken. */
export const auditVerifyCommand: Command = {
  name: 'audit verify',
  summary: 'check that the audit trail is intact (hash chain)',
  help: `Usage: elevate audit verify

Recomputes the hash chain of the audit trail from its first event to its newest and reports
the first event that was changed, removed or reordered. Exits 1 when the chain is broken.
Keep the printed last hash outside the database: the chain alone cannot show that events
were cut off its end.

Options:
  -h, --help   show this help`,
  async run(args, env) {
    if (!parseCommandArgs(this, args, {})) return 0;
    const { verifyAudit } = await import('../audit/audit-verify.ts');
    const result = await withDatabase(env, ({ database }) => verifyAudit(database.db));
    if (!result.ok) {
      throw new CommandFailure([
        `elevate: audit trail broken: ${result.reason} (${result.count} events checked)`,
      ]);
    }
    print(`audit trail intact: ${result.count} events, last hash ${result.lastHash}`);
    return 0;
  },
};

/** `elevate audit export`: the audit trail as JSONL or CSV, to stdout or a file. */
export const auditExportCommand: Command = {
  name: 'audit export',
  summary: 'export the audit trail as JSONL or CSV',
  help: `Usage: elevate audit export --format jsonl|csv [--since DATE] [-o FILE]

Writes the audit events, oldest first, to stdout or to FILE. JSONL keeps every field exactly
(recompute the hashes from it); CSV is for reading in a spreadsheet.

Options:
      --format jsonl|csv   the output format (required)
      --since DATE         only events at or after DATE (YYYY-MM-DD or ISO 8601, UTC unless a zone is given)
  -o, --output FILE        write to FILE instead of stdout
  -h, --help               show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, {
      format: { type: 'string' },
      since: { type: 'string' },
      output: { type: 'string', short: 'o' },
    });
    if (!parsed) return 0;
    const { format, since, output } = parsed.values;
    if (format === undefined) throw new UsageError(this.name, 'missing --format (jsonl or csv)');
    if (format !== 'jsonl' && format !== 'csv') {
      throw new UsageError(this.name, `--format must be jsonl or csv, not "${format}"`);
    }
    const sinceDate = since === undefined ? undefined : parseDate(this.name, since);
    const { exportAudit } = await import('../audit/audit-export.ts');
    return withDatabase(env, async ({ database }) => {
      if (output === undefined) {
        await exportAudit(database.db, { format, since: sinceDate }, writeStdout);
        return 0;
      }
      const file = await open(output, 'w').catch((error: NodeJS.ErrnoException) => {
        throw new CommandFailure([`elevate: cannot write ${output} (${error.code ?? error.message})`]);
      });
      try {
        const count = await exportAudit(database.db, { format, since: sinceDate }, async (chunk) => {
          await file.write(chunk);
        });
        print(`exported ${count} audit events to ${output}`);
      } finally {
        await file.close();
      }
      return 0;
    });
  },
};

/** `YYYY-MM-DD` (midnight UTC) or a full ISO 8601 time. */
function parseDate(command: string, text: string): Date {
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text;
  const date = new Date(iso);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime())) {
    throw new UsageError(command, `--since "${text}" is not a date (use YYYY-MM-DD or ISO 8601)`);
  }
  return date;
}
