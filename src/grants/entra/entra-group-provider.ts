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

const TYPE = 'entra-group';
/** The application permission adding, removing and reading members needs. */
const PERMISSION = 'GroupMember.ReadWrite.All';

const roleConfig = z.strictObject({
  /** The group's object id. */
  group: z.guid({ error: "expected the group's object id (a GUID)" }),
});
type GroupConfig = z.output<typeof roleConfig>;

/**
 * Membership of a Microsoft Entra ID security or Microsoft 365 group, through Microsoft Graph:
 * grant adds the principal as a direct member, revoke removes them, check reads the direct
 * membership. Switched on by ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET.
 */
export const entraGroupProvider: ProviderDefinition<typeof roleConfig> = {
  type: TYPE,
  roleConfig,
  create(env) {
    const settings = graphSettings(env, TYPE);
    return typeof settings === 'string' ? settings : createEntraGroupProvider(createGraphClient(settings));
  },
  verify: (config, env) =>
    verifyGraphAccess(env, TYPE, 'group', async (graph) => {
      const what = `reading group ${config.group}`;
      const response = await graph.send({
        method: 'GET',
        path: `/groups/${segment(config.group)}`,
        query: { $select: 'id,displayName,groupTypes,onPremisesSyncEnabled' },
        what,
        permission: PERMISSION,
      });
      if (response.status === 404)
        return `no group has the id ${config.group} in tenant ${graph.settings.tenantId}`;
      if (response.status !== 200) throw unexpectedAnswer(response, what);
      const group = record(response.body);
      const name = `${stringField(group, 'displayName') ?? config.group}`;
      if (Array.isArray(group.groupTypes) && group.groupTypes.includes('DynamicMembership')) {
        return `group "${name}" has dynamic membership: its rule sets the members, so Elevate cannot add any`;
      }
      if (group.onPremisesSyncEnabled === true) {
        return `group "${name}" is synchronised from on-premises Active Directory: its members can only change there`;
      }
      return undefined;
    }),
};

function createEntraGroupProvider(graph: GraphClient): GrantProvider {
  const users = createUserDirectory(graph, TYPE);
  return {
    type: TYPE,

    async grant(target) {
      const { group } = parameters(target.role);
      const user = await users.objectId(target.principal);
      const what = `adding ${target.principal.email} (${user}) to group ${group}`;
      const response = await graph.send({
        method: 'POST',
        path: `/groups/${segment(group)}/members/$ref`,
        body: { '@odata.id': graph.directoryObjectUrl(user) },
        what,
        permission: PERMISSION,
      });
      if (response.status < 300) return;
      // Graph answers a second add with 400 "One or more added object references already exist".
      if (response.status === 400 && /already exist/i.test(graphError(response.body).message)) return;
      throw unexpectedAnswer(response, what);
    },

    async revoke(target) {
      const { group } = parameters(target.role);
      const user = await users.objectId(target.principal);
      const what = `removing ${target.principal.email} (${user}) from group ${group}`;
      const response = await graph.send({
        method: 'DELETE',
        path: `/groups/${segment(group)}/members/${segment(user)}/$ref`,
        what,
        permission: PERMISSION,
      });
      if (response.status < 300) return;
      // Not a member (or no such group any more): the access is gone either way.
      if (response.status === 404) return;
      if (response.status === 400 && /do not exist/i.test(graphError(response.body).message)) return;
      throw unexpectedAnswer(response, what);
    },

    async check(target) {
      const { group } = parameters(target.role);
      const user = await users.objectId(target.principal);
      const what = `reading whether ${target.principal.email} (${user}) is a member of group ${group}`;
      // Direct members only (not transitive): the membership grant and revoke manage.
      const response = await graph.send({
        method: 'GET',
        path: `/groups/${segment(group)}/members/${segment(user)}/microsoft.graph.user`,
        query: { $select: 'id' },
        what,
        permission: PERMISSION,
      });
      if (response.status === 200) return true;
      if (response.status === 404) return false;
      throw unexpectedAnswer(response, what);
    },

    async members(role) {
      const { group } = parameters(role);
      // Direct members of any kind (users, groups, service principals): all hold the access.
      const members = await listAll(graph, {
        method: 'GET',
        path: `/groups/${segment(group)}/members`,
        query: { $select: 'id' },
        what: `reading the members of group ${group}`,
        permission: PERMISSION,
      });
      return members.flatMap((member) => stringField(member, 'id')?.toLowerCase() ?? []);
    },

    // Object ids compare lower-cased: a policy may write them in capitals.
    accountOf: async (_role, principal) => (await users.objectId(principal)).toLowerCase(),
  };
}

/** The role's parameters: the registry hands them parsed already; parsing again is harmless. */
function parameters(role: GrantTarget['role']): GroupConfig {
  const parsed = roleConfig.safeParse(role.config);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'parameters'}: ${i.message}`);
  throw new GrantError(`role ${role.name}: ${TYPE} ${problems.join('; ')}`, { retryable: false });
}
