import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

/**
 * Where a secret may sit in a log object. Redaction is a safety net: code should not log secrets
 * in the first place, but a config object or request headers logged whole must not leak them.
 */
const REDACT = [
  'token',
  'secret',
  'password',
  'authorization',
  'DATABASE_URL',
  'databaseUrl',
  '*.token',
  '*.secret',
  '*.password',
  '*.authorization',
  '*.DATABASE_URL',
  '*.databaseUrl',
  '*.SLACK_BOT_TOKEN',
  '*.SLACK_SIGNING_SECRET',
  '*.SLACK_APP_TOKEN',
  '*.TEAMS_CLIENT_SECRET',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
];

/** The process logger: one JSON object per line on stdout (or `destination`), secrets redacted. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'elevate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
      serializers: { err: serializeError },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/**
 * The one line worth showing of an unexpected error. Drizzle wraps a driver error as
 * "Failed query: <sql>\nparams: <values>"; the cause says what went wrong (and the values
 * may be anything), so it is unwrapped.
 */
export function errorLine(error: unknown): string {
  let current = error;
  while (current instanceof Error && current.message.startsWith('Failed query') && current.cause) {
    current = current.cause;
  }
  const message = current instanceof Error ? current.message : String(current);
  return (message.split('\n')[0] ?? '').trim() || 'unexpected error';
}

/** pino's error serializer, with the useful line as message and query parameters left out. */
function serializeError(error: unknown) {
  if (!(error instanceof Error)) return { message: String(error) };
  const { type, stack } = pino.stdSerializers.err(error);
  const code = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
  return {
    type,
    message: errorLine(error),
    ...(code === undefined ? {} : { code }),
    stack: stack.replace(/^params: .*$/gm, 'params: [not logged]'),
  };
}
