import { z } from 'zod';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

/**
 * The environment of the Microsoft Entra ID providers (entra-group, entra-role): the app
 * registration they sign in as, and the endpoints of a national cloud (or of a local fake).
 * All optional: without the first three the providers stay off.
 */
export const entraEnv = z.object({
  ENTRA_TENANT_ID: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'expected the directory (tenant) id or a verified domain name')
    .optional(),
  ENTRA_CLIENT_ID: z.string().regex(GUID, 'expected the application (client) id, a GUID').optional(),
  ENTRA_CLIENT_SECRET: z.string().min(1).optional(),
  // Root of Microsoft Graph, without the version: https://graph.microsoft.us for US Government L4.
  GRAPH_API_URL: httpUrl.optional(),
  // The sign-in endpoint of the same cloud: https://login.microsoftonline.us for US Government.
  ENTRA_LOGIN_URL: httpUrl.optional(),
});

export type EntraEnv = z.output<typeof entraEnv>;
