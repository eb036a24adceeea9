import { z } from 'zod';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** An https URL; plain http only on this machine (development, a local identity provider). */
const secureUrl = z
  .url({ protocol: /^https?$/, error: 'expected an https:// URL' })
  .refine((text) => {
    const url = new URL(text);
    return url.protocol === 'https:' || LOOPBACK.has(url.hostname);
  }, 'must use https (plain http is allowed only for localhost and 127.0.0.1, for development)')
  // One spelling, so `${PUBLIC_URL}/auth/callback` is always the registered redirect URI.
  .transform((text) => text.replace(/\/+$/, ''));

/**
 * Step-up MFA (issue 7): the identity provider people sign in with again before an action of a
 * role that requires MFA, and the public address its redirect comes back to. All optional: without
 * them step-up is off, and such actions are refused (never let through).
 */
export const stepUpEnv = z.object({
  // The address people's browsers reach Elevate at; the redirect URI is PUBLIC_URL/auth/callback.
  PUBLIC_URL: secureUrl.optional(),
  // The OpenID Connect issuer (its /.well-known/openid-configuration is read on first use).
  OIDC_ISSUER: secureUrl.optional(),
  OIDC_CLIENT_ID: z.string().trim().min(1).optional(),
  OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  // Sent as acr_values; an ID token whose acr equals one of them counts as MFA even without amr.
  OIDC_ACR_VALUES: z.string().trim().min(1).optional(),
  // A fresh step-up also covers the same person's next ones for this many minutes (0: every time).
  ELEVATE_STEP_UP_REMEMBER_MINUTES: z.coerce
    .number({ message: 'expected a whole number of minutes' })
    .int('expected a whole number of minutes')
    .min(0)
    .max(60, 'may be at most 60 (a step-up is meant to be fresh)')
    .default(0),
});

type StepUpEnv = z.output<typeof stepUpEnv>;

const REQUIRED = ['PUBLIC_URL', 'OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET'] as const;

/** The step-up settings when complete; undefined when none of them is set (step-up off). */
export interface StepUpSettings {
  publicUrl: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  acrValues: string[];
  rememberMinutes: number;
}

/** Half a configuration is a mistake, not "off": each missing variable is named. */
export function checkStepUpEnv(env: StepUpEnv, ctx: z.RefinementCtx): void {
  const set = REQUIRED.filter((name) => env[name] !== undefined);
  if (set.length === 0 || set.length === REQUIRED.length) return;
  for (const name of REQUIRED) {
    if (env[name] === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `is needed for step-up MFA, since ${set.join(', ')} ${set.length === 1 ? 'is' : 'are'} set`,
      });
    }
  }
}

/** The step-up settings of a checked environment, or undefined when step-up is off. */
export function stepUpSettings(env: StepUpEnv): StepUpSettings | undefined {
  const { PUBLIC_URL, OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET } = env;
  if (!PUBLIC_URL || !OIDC_ISSUER || !OIDC_CLIENT_ID || !OIDC_CLIENT_SECRET) return undefined;
  return {
    publicUrl: PUBLIC_URL,
    issuer: OIDC_ISSUER,
    clientId: OIDC_CLIENT_ID,
    clientSecret: OIDC_CLIENT_SECRET,
    acrValues: (env.OIDC_ACR_VALUES ?? '').split(/\s+/).filter(Boolean),
    rememberMinutes: env.ELEVATE_STEP_UP_REMEMBER_MINUTES,
  };
}
