import { z } from 'zod';
import {
  GrantError,
  type GrantProvider,
  type GrantTarget,
  type ProviderDefinition,
} from '../grant-provider.ts';
import {
  createGraphClient,
  createUserDirectory,
  type GraphClient,
  graphError,
  graphSettings,
  listAll,
  record,
  segment,
  stringField,
  unexpectedAnswer,
  verifyGraphAccess,
} from './graph-client.ts';

const TYPE = 'entra-role';
/** The application permission assigning, removing and reading directory roles needs. */
const PERMISSION = 'RoleManagement.ReadWrite.Directory';
const REQUESTS = '/roleManagement/directory/roleAssignmentScheduleRequests';

const roleConfig = z.strictObject({
  /** The role definition's id (for a built-in role, its template id). */
  roleDefinition: z.guid({ error: "expected the role definition's id (a GUID)" }),
  /** Where the role applies: "/" for the whole tenant, or "/administrativeUnits/<id>". */
  directoryScope: z
    .string()
    .regex(/^\/\S*$/, 'expected "/" (the whole tenant) or a scope such as "/administrativeUnits/<id>"')
    .default('/'),
});
type RoleConfig = z.output<typeof roleConfig>;

/**
 * An active Microsoft Entra ID directory role assignment through PIM's schedule requests in
 * Microsoft Graph. The assignment ends at the activation's end by itself (afterDateTime), so
 * access ends on time even if Elevate is down; a permanent assignment has noExpiration, and an
 * extension moves the end (extend). Switched on by ENTRA_TENANT_ID, ENTRA_CLIENT_ID and
 * ENTRA_CLIENT_SECRET.
 */
export const entraRoleProvider: ProviderDefinition<typeof roleConfig> = {
  type: TYPE,
  roleConfig,
  create(env) {
    const settings = graphSettings(env, TYPE);
    return typeof settings === 'string' ? settings : createEntraRoleProvider(createGraphClient(settings));
  },
  verify: (config, env) =>
    verifyGraphAccess(env, TYPE, 'roleDefinition', async (graph) => {
      const what = `reading role definition ${config.roleDefinition}`;
      const response = await graph.send({
        method: 'GET',
        path: `/roleManagement/directory/roleDefinitions/${segment(config.roleDefinition)}`,
        query: { $select: 'id,displayName' },
        what,
        permission: PERMISSION,
      });
      if (response.status === 404) {
        return `no directory role definition has the id ${config.roleDefinition} in tenant ${graph.settings.tenantId}`;
      }
      return response.status === 200 ? undefined : unexpectedAnswer(response, what).message;
    }),
};

function createEntraRoleProvider(graph: GraphClient): GrantProvider {
  const users = createUserDirectory(graph, TYPE);

  /** The principal's live assignment schedules of this role at this scope. */
  async function schedules(principalId: string, config: RoleConfig, what: string) {
    const quote = (value: string) => `'${value.replaceAll("'", "''")}'`;
    const response = await graph.send({
      method: 'GET',
      path: '/roleManagement/directory/roleAssignmentSchedules',
      query: {
        $filter: `principalId eq ${quote(principalId)} and roleDefinitionId eq ${quote(config.roleDefinition)}`,
      },
      what,
      permission: PERMISSION,
    });
    if (response.status !== 200) throw unexpectedAnswer(response, what);
    const value = record(response.body).value;
    const now = Date.now();
    return (Array.isArray(value) ? value : [])
      .map(record)
      .filter((s) => s.directoryScopeId === config.directoryScope && endOf(s) > now);
  }

  async function request(body: Record<string, unknown>, what: string) {
    const response = await graph.send({ method: 'POST', path: REQUESTS, body, what, permission: PERMISSION });
    const status = stringField(response.body, 'status');
    // PIM answers 201 with the request; one it turned down says so in its status.
    if (response.status < 300 && !['Denied', 'Failed', 'Canceled'].includes(status ?? '')) return undefined;
    if (response.status < 300) {
      throw new GrantError(`PIM did not carry out ${what}: the request ended ${status}`, {
        retryable: false,
      });
    }
    return response;
  }

  return {
    type: TYPE,

    async grant(target) {
      const config = parameters(target.role);
      const principalId = await users.objectId(target.principal);
      const what = `assigning role ${config.roleDefinition} at ${config.directoryScope} to ${target.principal.email} (${principalId})`;
      const refused = await request(schedule('adminAssign', principalId, config, target), what);
      if (!refused) return;
      if (graphError(refused.body).code !== 'RoleAssignmentExists') throw unexpectedAnswer(refused, what);
      // Already assigned: a retry after an answer was lost, which computes a later end, so the end
      // moves later to match. Only later: a longer assignment made elsewhere is never cut short.
      const wanted = target.activation.endAt?.getTime() ?? Number.POSITIVE_INFINITY;
      const assigned = (await schedules(principalId, config, what)).filter(
        (s) => (stringField(s, 'assignmentType') ?? 'Assigned') === 'Assigned',
      );
      const longest = Math.max(...assigned.map(endOf));
      if (assigned.length === 0 || longest >= wanted - 1000) return;
      const update = await request(schedule('adminUpdate', principalId, config, target), what);
      if (update) throw unexpectedAnswer(update, `${what} (updating its end)`);
    },

    async extend(target) {
      const config = parameters(target.role);
      const principalId = await users.objectId(target.principal);
      const end = target.activation.endAt?.toISOString() ?? 'no end';
      const what = `moving the end of role ${config.roleDefinition} at ${config.directoryScope} for ${target.principal.email} (${principalId}) to ${end}`;
      const refused = await request(schedule('adminUpdate', principalId, config, target), what);
      if (!refused) return;
      if (graphError(refused.body).code !== 'RoleAssignmentDoesNotExist') {
        throw unexpectedAnswer(refused, what);
      }
      // The directory already ended it at the old end: assign it again until the new one.
      const again = await request(schedule('adminAssign', principalId, config, target), what);
      if (again && graphError(again.body).code !== 'RoleAssignmentExists') {
        throw unexpectedAnswer(again, what);
      }
    },

    async revoke(target) {
      const config = parameters(target.role);
      const principalId = await users.objectId(target.principal);
      const what = `removing role ${config.roleDefinition} at ${config.directoryScope} from ${target.principal.email} (${principalId})`;
      const refused = await request(
        {
          action: 'adminRemove',
          principalId,
          roleDefinitionId: config.roleDefinition,
          directoryScopeId: config.directoryScope,
          justification: `Elevate: access ended (activation ${target.activationId})`,
        },
        what,
      );
      // Nothing to remove (expired, or never assigned): the access is gone either way.
      if (refused && graphError(refused.body).code !== 'RoleAssignmentDoesNotExist') {
        throw unexpectedAnswer(refused, what);
      }
    },

    async check(target) {
      const config = parameters(target.role);
      const principalId = await users.objectId(target.principal);
      const what = `reading the assignments of role ${config.roleDefinition} to ${target.principal.email} (${principalId})`;
      return (await schedules(principalId, config, what)).length > 0;
    },

    async members(role) {
      const config = parameters(role);
      const quote = (value: string) => `'${value.replaceAll("'", "''")}'`;
      // Active assignments, however they were made (PIM, the portal, another tool): the scope is
      // compared here, as Graph documents $filter on roleDefinitionId but not on both together.
      const assignments = await listAll(graph, {
        method: 'GET',
        path: '/roleManagement/directory/roleAssignments',
        query: { $filter: `roleDefinitionId eq ${quote(config.roleDefinition)}` },
        what: `reading the assignments of role ${config.roleDefinition}`,
        permission: PERMISSION,
      });
      return [
        ...new Set(
          assignments
            .filter((a) => a.directoryScopeId === config.directoryScope)
            .flatMap((a) => stringField(a, 'principalId')?.toLowerCase() ?? []),
        ),
      ];
    },

    // Object ids compare lower-cased: a policy may write them in capitals.
    accountOf: async (_role, principal) => (await users.objectId(principal)).toLowerCase(),
  };
}

/** The body of an assign or update schedule request for this activation. */
function schedule(
  action: 'adminAssign' | 'adminUpdate',
  principalId: string,
  config: RoleConfig,
  target: GrantTarget,
): Record<string, unknown> {
  const { activation } = target;
  return {
    action,
    principalId,
    roleDefinitionId: config.roleDefinition,
    directoryScopeId: config.directoryScope,
    // A role's PIM settings may require a justification; an empty one would be refused.
    justification: activation.justification.trim() || `Elevate activation ${target.activationId}`,
    scheduleInfo: {
      startDateTime: activation.startAt.toISOString(),
      expiration: activation.endAt
        ? { type: 'afterDateTime', endDateTime: activation.endAt.toISOString() }
        : { type: 'noExpiration' },
    },
    ...(activation.ticketNumber
      ? {
          ticketInfo: {
            ticketNumber: activation.ticketNumber,
            ...(activation.ticketSystem ? { ticketSystem: activation.ticketSystem } : {}),
          },
        }
      : {}),
  };
}

/** When a schedule ends, in ms; infinity when it does not. */
function endOf(schedule: Record<string, unknown>): number {
  const end = stringField(record(record(schedule.scheduleInfo).expiration), 'endDateTime');
  const at = end ? Date.parse(end) : Number.NaN;
  return Number.isNaN(at) ? Number.POSITIVE_INFINITY : at;
}

/** The role's parameters: the registry hands them parsed already; parsing again is harmless. */
function parameters(role: GrantTarget['role']): RoleConfig {
  const parsed = roleConfig.safeParse(role.config);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'parameters'}: ${i.message}`);
  throw new GrantError(`role ${role.name}: ${TYPE} ${problems.join('; ')}`, { retryable: false });
}
