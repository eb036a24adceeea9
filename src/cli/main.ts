import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.ts';
import { ElevateError } from '../errors.ts';
import { errorLine } from '../log.ts';
import { activationsListCommand, revokeCommand } from './activations-command.ts';
import {
  alertsEvaluateCommand,
  alertsListCommand,
  alertsRemoveEligibilityCommand,
  alertsRevokeCommand,
  alertsScanCommand,
} from './alerts-command.ts';
import { auditExportCommand, auditVerifyCommand } from './audit-command.ts';
import { type Command, CommandFailure, print, UsageError } from './command.ts';
import { migrateCommand } from './migrate-command.ts';
import { applyCommand, exportCommand } from './policy-command.ts';
import { reviewsExportCommand, reviewsListCommand, reviewsStartCommand } from './reviews-command.ts';
import { rolesListCommand } from './roles-command.ts';
import { serveCommand } from './serve-command.ts';

/** Every command, in the order the help lists them. A group's commands share their first word. */
const COMMANDS: Command[] = [
  serveCommand,
  migrateCommand,
  applyCommand,
  exportCommand,
  rolesListCommand,
  activationsListCommand,
  revokeCommand,
  alertsListCommand,
  alertsEvaluateCommand,
  alertsScanCommand,
  alertsRemoveEligibilityCommand,
  alertsRevokeCommand,
  reviewsStartCommand,
  reviewsListCommand,
  reviewsExportCommand,
  auditVerifyCommand,
  auditExportCommand,
];

const HELP_FLAGS = new Set(['-h', '--help']);

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: elevate [command] [options]

Just-in-time privileged access from Slack and Microsoft Teams.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Without a command, elevate runs serve. Run elevate <command> --help for a command's options.
Configuration comes from the environment (DATABASE_URL, or PGlite in ELEVATE_DATA_DIR; PORT; ...).

Options:
  -h, --help      show this help
  -v, --version   show the version`;
}

function groupHelp(group: string, commands: Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: elevate ${group} <command> [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run elevate ${group} <command> --help for a command's options.`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Finds the command `argv` names and runs it; resolves with the exit code. */
async function dispatch(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [first, second] = argv;
  if (first === undefined) return serveCommand.run([], env);
  if (HELP_FLAGS.has(first) || first === 'help') {
    print(topHelp());
    return 0;
  }
  if (first === '-v' || first === '--version') {
    print(version());
    return 0;
  }
  if (first.startsWith('-')) throw new UsageError('', `unknown option ${first}`);
  const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
  if (group.length > 0) {
    if (second === undefined) {
      throw new UsageError(
        first,
        `missing a command (${group.map((c) => c.name.split(' ')[1]).join(' or ')})`,
      );
    }
    if (HELP_FLAGS.has(second)) {
      print(groupHelp(first, group));
      return 0;
    }
    const command = group.find((c) => c.name === `${first} ${second}`);
    if (!command) throw new UsageError(first, `unknown command "${second}"`);
    return command.run(argv.slice(2), env);
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) throw new UsageError('', `unknown command "${first}"`);
  return command.run(argv.slice(1), env);
}

/**
 * The `elevate` command line. Exit codes: 0 ok, 1 failure, 2 usage. Every error is printed as
 * one line per problem on stderr, never as a stack trace.
 */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    return await dispatch(argv, env);
  } catch (error) {
    const { code, lines } = describe(error);
    process.stderr.write(lines.map((line) => `${line}\n`).join(''));
    return code;
  }
}

function describe(error: unknown): { code: number; lines: string[] } {
  if (error instanceof UsageError) {
    const command = error.command ? `elevate ${error.command}` : 'elevate';
    return { code: 2, lines: [`${command}: ${error.message} (see ${command} --help)`] };
  }
  if (error instanceof ConfigError) return { code: 1, lines: error.lines };
  if (error instanceof CommandFailure) return { code: 1, lines: error.lines };
  if (error instanceof ElevateError) return { code: 1, lines: [`elevate: ${error.message}`] };
  return { code: 1, lines: [`elevate: ${errorLine(error)}`] };
}

/** Runs the CLI as a process: flushes the output, then exits with the command's code. */
export async function run(argv: string[]): Promise<never> {
  const code = await main(argv);
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
  process.exit(code);
}
