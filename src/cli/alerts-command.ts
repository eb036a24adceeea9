import {
  type Command,
  CommandFailure,
  commandLineActor,
  parseCommandArgs,
  print,
  UsageError,
  withDatabase,
} from './command.ts';
import { formatTable, formatTime } from './table.ts';

/** `elevate alerts list`: the security alerts, open ones unless --all. */
export const alertsListCommand: Command = {
  name: 'alerts list',
  summary: 'list the security alerts',
  help: `Usage: elevate alerts list [--all]

Lists the open security alerts, newest first: what was found, about which role and whom. The
loop looks for them every minute (elevate alerts evaluate does it now).

Options:
      --all    include resolved alerts (the latest 200)
  -h, --help   show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, { all: { type: 'boolean' } });
    if (!parsed) return 0;
    const all = parsed.values.all === true;
    const { alertSummary, ALERT_TITLES } = await import('../elevation/alert-service.ts');
    const alerts = await withDatabase(env, ({ services }) => services.alerts.list({ all }));
    if (alerts.length === 0) {
      print(all ? 'no alerts yet' : 'no open alerts');
      return 0;
    }
    const rows = alerts.map((a) => [
      a.id,
      ALERT_TITLES[a.kind],
      a.role,
      formatTime(a.raisedAt),
      ...(all ? [a.resolvedAt ? `${formatTime(a.resolvedAt)} by ${a.resolvedBy ?? 'system'}` : 'open'] : []),
      alertSummary(a),
    ]);
    const headers = ['ID', 'ALERT', 'ROLE', 'RAISED', ...(all ? ['RESOLVED'] : []), 'WHAT'];
    print(formatTable(headers, rows));
    return 0;
  },
};

/** `elevate alerts evaluate`: one pass now, as the loop makes every minute. */
export const alertsEvaluateCommand: Command = {
  name: 'alerts evaluate',
  summary: 'look for security alerts now',
  help: `Usage: elevate alerts evaluate

Looks at every alert condition now, as the loop does every minute: new alerts are raised (the
admins are told), alerts whose condition went away are resolved.

Options:
  -h, --help   show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, {});
    if (!parsed) return 0;
    const outcome = await withDatabase(env, ({ services }) => services.alerts.evaluate());
    print(`${outcome.raised} alert(s) raised, ${outcome.resolved} resolved`);
    return 0;
  },
};

/** `elevate alerts scan`: reconciliation and an evaluation pass now, as an admin (audited). */
export const alertsScanCommand: Command = {
  name: 'alerts scan',
  summary: 'compare the targets with Elevate and look for alerts now',
  help: `Usage: elevate alerts scan

Reads now who holds each role in its target (roles whose provider can list them), as the loop does
every 5 minutes, then looks at every alert condition, as it does every minute. Holders found
outside Elevate raise "Role assigned outside Elevate" alerts; the admins are told as usual. The
scan is audited (alerts.scan_requested) in your name.

Options:
  -h, --help   show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, {});
    if (!parsed) return 0;
    const actor = commandLineActor(env);
    const outcome = await withDatabase(env, ({ services }) => services.alerts.scan({ actor }));
    print(
      `${outcome.reconciled.roles} role(s) compared with their target, ${outcome.reconciled.found} new holder(s) found outside Elevate; ${outcome.raised} alert(s) raised, ${outcome.resolved} resolved`,
    );
    if (outcome.problem)
      throw new CommandFailure([`elevate: not every target could be read: ${outcome.problem}`]);
    return 0;
  },
};

/** `elevate alerts <action> <id>`: an alert's action, as an admin at the command line. */
function alertAction(action: 'remove-eligibility' | 'revoke', summary: string, help: string): Command {
  return {
    name: `alerts ${action}`,
    summary,
    help: `Usage: elevate alerts ${action} <alert-id>

${help} The alert is resolved in your name. Find the id with: elevate alerts list

Options:
  -h, --help   show this help`,
    async run(args, env) {
      const parsed = parseCommandArgs(this, args, {}, 1);
      if (!parsed) return 0;
      const [alertId] = parsed.positionals;
      if (!alertId) throw new UsageError(this.name, 'missing the alert id');
      const actor = commandLineActor(env);
      const alert = await withDatabase(env, ({ services }) =>
        action === 'revoke'
          ? services.alerts.revoke({ actor, alertId })
          : services.alerts.removeEligibility({ actor, alertId }),
      );
      print(
        `alert ${alert.id} resolved: ${action === 'revoke' ? 'revoked' : 'eligibility removed'} (${alert.subject} → ${alert.role})`,
      );
      return 0;
    },
  };
}

export const alertsRemoveEligibilityCommand = alertAction(
  'remove-eligibility',
  'remove the eligibility a stale-eligibility alert is about',
  'Removes the eligibility that a stale eligibility alert is about; the principal is told.',
);

export const alertsRevokeCommand = alertAction(
  'revoke',
  'revoke a grant found in the target with no activation',
  'Takes back, in the target system, a grant that reconciliation found with no activation behind it.',
);
