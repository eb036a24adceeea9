import { loadConfig } from '../config.ts';
import type { Database } from '../db/client.ts';
import { type Command, openConfiguredDatabase, parseCommandArgs, print, reachDatabase } from './command.ts';

/** `elevate migrate`: brings the database schema up to date (what every command does first). */
export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'bring the database schema up to date',
  help: `Usage: elevate migrate

Applies the migrations the database does not have yet, to PostgreSQL at DATABASE_URL or to the
embedded PGlite database in ELEVATE_DATA_DIR. Safe to run again; every other command (and
serve) migrates first as well.

Options:
  -h, --help   show this help`,
  async run(args, env) {
    if (!parseCommandArgs(this, args, {})) return 0;
    const config = loadConfig(env);
    const database = await openConfiguredDatabase(config);
    try {
      const before = await appliedCount(database);
      await reachDatabase(config, () => database.migrate());
      const after = await appliedCount(database);
      print(
        after === before
          ? `database up to date (${after} migrations applied)`
          : `applied ${after - before} migration(s); database up to date (${after} migrations applied)`,
      );
    } finally {
      await database.close();
    }
    return 0;
  },
};

async function appliedCount(database: Database): Promise<number> {
  const [{ sql }, { rowsOf }] = await Promise.all([import('../db/drizzle.ts'), import('../db/client.ts')]);
  try {
    const [row] = rowsOf<{ n: number }>(
      await database.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`),
    );
    return row?.n ?? 0;
  } catch {
    return 0; // no migrations table yet: a new database
  }
}
