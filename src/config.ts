import { z } from 'zod';
import { checkStepUpEnv, stepUpEnv } from './auth/step-up-env.ts';
import { slackChatEnv } from './chat/slack/slack-env.ts';
import { teamsEnv, teamsEnvProblems } from './chat/teams/teams-env.ts';
import { DURATION_HINT, parseDuration } from './elevation/duration.ts';
import { entraEnv } from './grants/entra/entra-env.ts';
import { slackEnv } from './grants/slack-usergroup/slack-env.ts';

/** A duration variable (`30m`, `8h`, `2d`, ISO 8601), as whole minutes. */
const minutes = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const value = parseDuration(text);
      if (value === undefined)
        ctx.addIssue({ code: 'custom', message: `is not a duration (${DURATION_HINT})` });
      return value ?? 0;
    });

/** A duration in seconds or minutes (`30s`, `2m`, `1m30s`), as milliseconds from `min` to `max` seconds. */
const milliseconds = (fallback: string, min: number, max: number) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const match = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
      const seconds = match ? Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0) : 0;
      if (seconds < min || seconds > max)
        ctx.addIssue({ code: 'custom', message: `use ${min}s to ${max / 60}m, e.g. 30s or 2m` });
      return seconds * 1000;
    });

/**
 * The whole environment the process reads, in one schema with a section per concern.
 * Chat platforms and grant providers add their sections here when they arrive.
 */
const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: z.coerce
      .number({ message: 'expected a port number' })
      .int()
      .min(0)
      .max(65535, 'expected a port number (0-65535)')
      .default(3000),
    LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
        message: 'expected one of fatal, error, warn, info, debug, trace, silent',
      })
      .default('info'),
    // Database: PostgreSQL when set, embedded PGlite under ELEVATE_DATA_DIR otherwise.
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL')
      .optional(),
    ELEVATE_DATA_DIR: z.string().min(1).default('./.data'),
    // Policy as code: applied at start when set.
    ELEVATE_POLICY_FILE: z.string().min(1).optional(),
    // The loop's notices: warn before an activation ends; remind approvers of waiting requests.
    ELEVATE_EXPIRY_WARNING: minutes('10m'),
    ELEVATE_REMINDER_AFTER: minutes('1h'),
    ELEVATE_REMINDER_MAX: z.coerce
      .number({ message: 'expected a whole number' })
      .int()
      .min(0)
      .max(20)
      .default(3),
    // How long a replica's claim on a grant/revoke or a batch of notifications holds: after a
    // crash, another replica takes the work over once it runs out. Longer than the slowest call.
    ELEVATE_IN_FLIGHT_LEASE: milliseconds('60s', 5, 3600),
  })
  // Sections owned by the parts that use them: a provider or platform brings its variables.
  .extend(slackEnv.shape)
  .extend(slackChatEnv.shape)
  .extend(teamsEnv.shape)
  .extend(entraEnv.shape)
  .extend(stepUpEnv.shape)
  // Rules across variables, reported on the variable to change.
  .superRefine((env, ctx) => {
    checkStepUpEnv(env, ctx);
    for (const problem of teamsEnvProblems(env))
      ctx.addIssue({ code: 'custom', path: [problem.name], message: problem.message });
  });

/** The validated configuration. */
export type Config = z.output<typeof envSchema>;

/** A configuration problem; `lines` has one line per bad variable, fit to print as they are. */
export class ConfigError extends Error {
  readonly lines: string[];
  constructor(lines: string[]) {
    super(lines.join('\n'));
    this.name = 'ConfigError';
    this.lines = lines;
  }
}

/** Reads and checks the environment; throws a ConfigError listing every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "not set", as in most twelve-factor tools.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const result = envSchema.safeParse(present);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      const value = env[name];
      // Echo the bad value to help, unless it may hold a secret (a URL can carry a password).
      const shown =
        value === undefined || /SECRET|TOKEN|PASSWORD|URL/.test(name) ? '' : `=${JSON.stringify(value)}`;
      return `config: ${name}${shown}: ${issue.message}`;
    }),
  );
}
