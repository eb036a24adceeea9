import { formatDuration } from '../elevation/duration.ts';
import { type Command, parseCommandArgs, print, withDatabase } from './command.ts';
import { formatTable } from './table.ts';

/** `elevate roles list`: the roles and the gist of their settings. */
export const rolesListCommand: Command = {
  name: 'roles list',
  summary: 'list the roles',
  help: `Usage: elevate roles list [--all]

Lists the roles with their provider and the gist of their settings.

Options:
      --all    include archived roles
  -h, --help   show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, { all: { type: 'boolean' } });
    if (!parsed) return 0;
    const { listRoles } = await import('../elevation/role-repository.ts');
    const roles = await withDatabase(env, ({ database }) =>
      listRoles(database.db, { includeArchived: parsed.values.all === true }),
    );
    if (roles.length === 0) {
      print('no roles yet (define them in a policy file and run: elevate apply -f FILE)');
      return 0;
    }
    const rows = roles.map((role) => {
      const s = role.settings;
      const approval = s.requireApproval
        ? `${s.approvalsRequired} of ${s.approvers.length > 0 ? s.approvers.length : 'admins'}`
        : 'no';
      return [
        role.archivedAt ? `${role.name} (archived)` : role.name,
        role.providerType,
        role.scope || '-',
        `${formatDuration(s.maxDuration)}`,
        approval,
        role.description,
      ];
    });
    print(formatTable(['NAME', 'PROVIDER', 'SCOPE', 'MAX', 'APPROVAL', 'DESCRIPTION'], rows));
    return 0;
  },
};
