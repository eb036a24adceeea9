import { userInfo } from 'node:os';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { systemClock } from '../clock.ts';
import { type Config, loadConfig } from '../config.ts';
import type { Database } from '../db/client.ts';
import { type Actor, cliActor } from '../elevation/actor.ts';
import { errorLine } from '../log.ts';
import type { Services } from '../main.ts';

/**
 * One `elevate` command (or subcommand, named with its group: `audit verify`).
 * `run` resolves with the exit code; it throws UsageError for bad arguments (exit 2) and lets
 * ConfigError, ElevateError and CommandFailure through (exit 1), which `cli/main.ts` prints.
 * Commands import the database layer (drizzle, drivers, services) inside `run`, after their
 * arguments are checked, so `--help` and usage errors answer at once.
 */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The full `--help` text. */
  help: string;
  run(args: string[], env: NodeJS.ProcessEnv): Promise<number>;
}

/** The command line is wrong: exit 2, with this one line and a pointer to the help. */
export class UsageError extends Error {
  readonly command: string;
  constructor(command: string, message: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** The command ran and failed for a reason the user can act on: exit 1, these lines (one per problem) as they are. */
export class CommandFailure extends Error {
  readonly lines: string[];
  constructor(lines: string[]) {
    super(lines.join('\n'));
    this.name = 'CommandFailure';
    this.lines = lines;
  }
}

/**
 * The admin at this command line, named after the OS user for the audit trail. Containers may
 * run under a uid with no passwd entry (userInfo throws there): then $USER, or the uid.
 */
export function commandLineActor(env: NodeJS.ProcessEnv): Actor {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = env.USER || `uid-${process.getuid?.() ?? 'unknown'}`;
  }
  return cliActor(user);
}

/** Writes lines to stdout. */
export function print(...lines: string[]): void {
  process.stdout.write(lines.map((line) => `${line}\n`).join(''));
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/**
 * Parses a command's arguments strictly, turning parseArgs's errors into one-line usage errors.
 * Returns undefined after printing the help when `-h`/`--help` was given.
 */
export function parseCommandArgs<const O extends ParseArgsOptionsConfig>(
  command: Command,
  args: string[],
  options: O,
  maxPositionals = 0,
) {
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: O & typeof HELP; allowPositionals: true }>
  >;
  try {
    parsed = parseArgs({ args, options: { ...options, ...HELP }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(command.name, describeParseError(error));
  }
  if ((parsed.values as { help?: boolean }).help) {
    print(command.help);
    return undefined;
  }
  const extra = parsed.positionals[maxPositionals];
  if (extra !== undefined) throw new UsageError(command.name, `unexpected argument "${extra}"`);
  return parsed;
}

function describeParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const name = /Unknown option '([^']+)'/.exec(message)?.[1];
    return `unknown option ${name ?? ''}`.trim();
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const name = /--[\w-]+/.exec(message)?.[0] ?? /'(-\w)'/.exec(message)?.[1];
    return `option ${name ?? ''} needs a value`.replace('  ', ' ');
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /Unexpected argument '([^']+)'/.exec(message)?.[1];
    return `unexpected argument "${arg ?? ''}"`;
  }
  return message.split('\n')[0] ?? message;
}

/** What a command that works on the data gets: the config, the migrated database and the services. */
export interface CommandContext {
  config: Config;
  database: Database;
  services: Services;
}

/**
 * Loads the config, opens the database (PostgreSQL from DATABASE_URL, else PGlite in
 * ELEVATE_DATA_DIR), migrates it (idempotent), runs `work`, and closes the database whatever happens.
 */
export async function withDatabase<T>(
  env: NodeJS.ProcessEnv,
  work: (context: CommandContext) => Promise<T>,
): Promise<T> {
  const config = loadConfig(env);
  const { createServices } = await import('../main.ts');
  const database = await openConfiguredDatabase(config);
  try {
    await reachDatabase(config, () => database.migrate());
    const services = createServices({ config, db: database.db, clock: systemClock });
    try {
      return await work({ config, database, services });
    } finally {
      await services.providers.close();
    }
  } finally {
    await database.close();
  }
}

/** Opens the database the config names; a failure is one line saying which database. */
export async function openConfiguredDatabase(config: Config): Promise<Database> {
  const { openDatabase } = await import('../db/client.ts');
  return reachDatabase(config, () =>
    openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.ELEVATE_DATA_DIR }),
  );
}

/** Runs `step` against the database, turning a failure into one line that names the database (never its URL). */
export async function reachDatabase<T>(config: Config, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const which = config.DATABASE_URL
      ? 'the database at DATABASE_URL'
      : `the PGlite database in ${config.ELEVATE_DATA_DIR}`;
    throw new CommandFailure([`elevate: cannot use ${which}: ${errorLine(error)}`]);
  }
}

/** Writes `chunk` to stdout, waiting when the pipe is full, so large exports stay in bounded memory. */
export function writeStdout(chunk: string): Promise<void> | undefined {
  if (process.stdout.write(chunk)) return undefined;
  return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
}

/** A `--limit`-style option: a positive whole number, or a usage error naming the option. */
export function positiveInt(command: string, option: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(command, `${option} expects a positive whole number, not "${value}"`);
  }
  return n;
}
