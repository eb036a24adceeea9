import type { ActivationStatus } from '../elevation/activation.sql.ts';
import {
  type Command,
  commandLineActor,
  parseCommandArgs,
  positiveInt,
  print,
  UsageError,
  withDatabase,
} from './command.ts';
import { formatTable, formatTime } from './table.ts';

/** `elevate activations list`: activations and assignments, newest first. */
export const activationsListCommand: Command = {
  name: 'activations list',
  summary: 'list activations and assignments, newest first',
  help: `Usage: elevate activations list [--status S] [--limit N]

Lists activations, active assignments and extension requests, newest first.

Options:
      --status S   only these statuses, comma-separated: pending_approval, approved,
                   activating, active, revoking, ended, cancelled, denied, timed_out,
                   failed, or open (all of pending_approval up to revoking)
      --limit N    at most N rows (default 50)
  -h, --help       show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, {
      status: { type: 'string' },
      limit: { type: 'string' },
    });
    if (!parsed) return 0;
    const limit =
      parsed.values.limit === undefined ? 50 : positiveInt(this.name, '--limit', parsed.values.limit);
    const statuses =
      parsed.values.status === undefined ? undefined : await parseStatuses(this.name, parsed.values.status);
    const views = await withDatabase(env, ({ services }) => services.activations.list({ statuses, limit }));
    if (views.length === 0) {
      print('no activations');
      return 0;
    }
    const rows = views.map(({ activation: a, role, principal }) => [
      a.id,
      principal.email,
      role.name,
      a.kind,
      a.status,
      formatTime(a.startAt),
      formatTime(a.endAt),
      a.requestedBy,
    ]);
    print(formatTable(['ID', 'PRINCIPAL', 'ROLE', 'KIND', 'STATUS', 'START', 'END', 'REQUESTED BY'], rows));
    return 0;
  },
};

async function parseStatuses(command: string, text: string): Promise<ActivationStatus[]> {
  const { ACTIVATION_STATUSES, OPEN_STATUSES } = await import('../elevation/activation.sql.ts');
  const statuses = new Set<ActivationStatus>();
  for (const word of text.split(',').map((w) => w.trim().toLowerCase())) {
    if (word === 'open') for (const s of OPEN_STATUSES) statuses.add(s);
    else if ((ACTIVATION_STATUSES as readonly string[]).includes(word))
      statuses.add(word as ActivationStatus);
    else {
      throw new UsageError(
        command,
        `--status "${word}" is not a status (use ${[...ACTIVATION_STATUSES, 'open'].join(', ')})`,
      );
    }
  }
  return [...statuses];
}

/** `elevate revoke <id>`: an admin takes access away (or cancels a waiting request). */
export const revokeCommand: Command = {
  name: 'revoke',
  summary: 'revoke an activation or assignment, or cancel a waiting request',
  help: `Usage: elevate revoke <activation-id> [--reason TEXT]

Takes access away now: a running activation or assignment is revoked in its target system; a
pending or scheduled one is cancelled. The requester is told, with the reason. Find the id
with: elevate activations list --status open

Options:
      --reason TEXT   why, for the requester and the audit trail
  -h, --help          show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, { reason: { type: 'string' } }, 1);
    if (!parsed) return 0;
    const [activationId] = parsed.positionals;
    if (!activationId) throw new UsageError(this.name, 'missing the activation id');
    const reason = parsed.values.reason?.trim() || undefined;
    const view = await withDatabase(env, ({ services }) =>
      services.activations.revoke({ actor: commandLineActor(env), activationId, reason }),
    );
    const a = view.activation;
    const what = `${a.kind} ${a.id} of ${view.role.name} for ${view.principal.email}`;
    if (a.status === 'revoking') {
      print(
        `${what}: revoke started but not confirmed yet (${a.lastError ?? 'provider busy'}); it is retried`,
      );
    } else {
      print(`${what}: ${a.status === 'ended' ? 'revoked' : a.status}`);
    }
    return 0;
  },
};
