import { readFile, writeFile } from 'node:fs/promises';
import { text as readStream } from 'node:stream/consumers';
import {
  type Command,
  CommandFailure,
  commandLineActor,
  parseCommandArgs,
  print,
  UsageError,
  withDatabase,
} from './command.ts';

/** `elevate apply -f FILE`: makes the database match a policy file, showing the diff. */
export const applyCommand: Command = {
  name: 'apply',
  summary: 'make the database match a policy file (roles, eligibility, assignments, admins)',
  help: `Usage: elevate apply -f FILE [--dry-run]

Checks the policy file, shows what differs from the database, and applies it all-or-nothing
(audited). Only the sections the file has are managed. Applying the same file again changes
nothing. Exits 1, applying nothing, when the file has problems (each is listed).

Options:
  -f, --file FILE   the policy file (YAML); - reads stdin
      --dry-run     show the changes without applying them
  -h, --help        show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, {
      file: { type: 'string', short: 'f' },
      'dry-run': { type: 'boolean' },
    });
    if (!parsed) return 0;
    const file = parsed.values.file;
    if (file === undefined) throw new UsageError(this.name, 'missing -f FILE (the policy file)');
    const dryRun = parsed.values['dry-run'] === true;
    const fileName = file === '-' ? 'stdin' : file;
    const text = await readInput(file);
    const result = await withDatabase(env, ({ services }) =>
      services.policy.apply({ actor: commandLineActor(env), text, fileName, dryRun }),
    );
    if (!result.ok) {
      throw new CommandFailure(
        result.problems.map((problem) =>
          problem.startsWith(fileName) ? problem : `${fileName}: ${problem}`,
        ),
      );
    }
    if (result.changes.length === 0) {
      const { noChangesMessage } = await import('../policy/policy-service.ts');
      print(noChangesMessage(fileName));
      return 0;
    }
    print(...result.changes);
    print(
      dryRun
        ? `dry run: ${result.changes.length} change(s) not applied; run without --dry-run to apply them`
        : `applied ${result.changes.length} change(s) from ${fileName}`,
    );
    return 0;
  },
};

/** `elevate export`: the current policy as a file `apply` takes back. */
export const exportCommand: Command = {
  name: 'export',
  summary: 'write the current roles, eligibility, assignments and admins as a policy file',
  help: `Usage: elevate export [-o FILE]

Writes the current admins, live roles, eligibilities and active assignments as a policy file
(YAML) that elevate apply takes back unchanged.

Options:
  -o, --output FILE   write to FILE instead of stdout
  -h, --help          show this help`,
  async run(args, env) {
    const parsed = parseCommandArgs(this, args, { output: { type: 'string', short: 'o' } });
    if (!parsed) return 0;
    const yaml = await withDatabase(env, ({ services }) => services.policy.exportPolicy());
    const output = parsed.values.output;
    if (output === undefined || output === '-') {
      process.stdout.write(yaml);
      return 0;
    }
    await writeFile(output, yaml).catch((error: NodeJS.ErrnoException) => {
      throw new CommandFailure([`elevate: cannot write ${output} (${error.code ?? error.message})`]);
    });
    print(`policy written to ${output}`);
    return 0;
  },
};

async function readInput(file: string): Promise<string> {
  if (file === '-') return readStream(process.stdin);
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new CommandFailure([
      `elevate: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    ]);
  }
}
