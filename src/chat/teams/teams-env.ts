import { z } from 'zod';
import type { Config } from '../../config.ts';

/** The public cloud's endpoints; a sovereign cloud (or a local stand-in) overrides them. */
export const TEAMS_PUBLIC = {
  openIdMetadataUrl: 'https://login.botframework.com/v1/.well-known/openidconfiguration',
  loginUrl: 'https://login.microsoftonline.com',
  tokenIssuer: 'https://api.botframework.com',
  botScope: 'https://api.botframework.com/.default',
  serviceUrl: 'https://smba.trafficmanager.net/teams/',
} as const;

const url = z.string().regex(/^https?:\/\/\S+$/, 'expected an http(s) URL');

/**
 * The Teams chat platform's variables. Teams is on with TEAMS_CLIENT_ID + TEAMS_CLIENT_SECRET +
 * TEAMS_TENANT_ID (the Azure bot's app registration, single-tenant), or, for local development
 * only, with TEAMS_ALLOW_UNAUTHENTICATED=true (no JWT check, refused in production).
 */
export const teamsEnv = z.object({
  TEAMS_CLIENT_ID: z.string().min(1).optional(),
  TEAMS_CLIENT_SECRET: z.string().min(1).optional(),
  TEAMS_TENANT_ID: z.string().min(1).optional(),
  TEAMS_ALLOW_UNAUTHENTICATED: z
    .enum(['true', 'false'], { message: 'expected true or false' })
    .default('false')
    .transform((v) => v === 'true'),
  // Sovereign clouds (and local stand-ins): where the keys, the sign-in and the connector are.
  TEAMS_OPENID_METADATA_URL: url.default(TEAMS_PUBLIC.openIdMetadataUrl),
  TEAMS_LOGIN_URL: url.default(TEAMS_PUBLIC.loginUrl),
  TEAMS_TOKEN_ISSUER: url.default(TEAMS_PUBLIC.tokenIssuer),
  TEAMS_BOT_SCOPE: z.string().min(1).default(TEAMS_PUBLIC.botScope),
  /** Where proactive 1:1 chats are created for people who never wrote to the bot. */
  TEAMS_SERVICE_URL: url.default(TEAMS_PUBLIC.serviceUrl),
});

type TeamsEnv = z.output<typeof teamsEnv>;

/**
 * Cross-variable rules, one line each: credentials come as a set, and unauthenticated mode is
 * for a developer's machine only (a production bot that skips the JWT check obeys anyone).
 */
export function teamsEnvProblems(env: TeamsEnv & { NODE_ENV: string }): { name: string; message: string }[] {
  const problems: { name: string; message: string }[] = [];
  const names = ['TEAMS_CLIENT_ID', 'TEAMS_CLIENT_SECRET', 'TEAMS_TENANT_ID'] as const;
  const set = names.filter((n) => env[n] !== undefined);
  if (set.length > 0 && set.length < names.length) {
    for (const n of names.filter((n) => env[n] === undefined))
      problems.push({ name: n, message: `is required with ${set.join(' and ')} (Teams credentials)` });
  }
  if (env.TEAMS_ALLOW_UNAUTHENTICATED && env.NODE_ENV === 'production') {
    problems.push({
      name: 'TEAMS_ALLOW_UNAUTHENTICATED',
      message:
        'is refused when NODE_ENV=production: every Teams request must carry a valid token (set TEAMS_CLIENT_ID, TEAMS_CLIENT_SECRET and TEAMS_TENANT_ID)',
    });
  }
  return problems;
}

/** Whether Teams is on: all three credentials, or unauthenticated development mode. */
export const teamsChatOn = (config: Config): boolean =>
  Boolean(
    (config.TEAMS_CLIENT_ID && config.TEAMS_CLIENT_SECRET && config.TEAMS_TENANT_ID) ||
      config.TEAMS_ALLOW_UNAUTHENTICATED,
  );
