import { loadConfig } from '../config.ts';
import { type Command, parseCommandArgs } from './command.ts';

/** `elevate serve`: the long-running process (also what `elevate` alone does). */
export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the bot: HTTP server (health, readiness, metrics, chat platforms) (default)',
  help: `Usage: elevate serve

Migrates the database, applies ELEVATE_POLICY_FILE when set, and serves HTTP on PORT:
GET /healthz, GET /readyz, GET /metrics and the routes of the configured chat platforms.
Logs JSON lines to stdout. Stops cleanly on SIGTERM or SIGINT.

Configuration is read from the environment: PORT, LOG_LEVEL, DATABASE_URL (else PGlite in
ELEVATE_DATA_DIR), ELEVATE_POLICY_FILE, and the chat platform credentials.

Options:
  -h, --help   show this help`,
  async run(args, env) {
    if (!parseCommandArgs(this, args, {})) return 0;
    const config = loadConfig(env);
    const { serve } = await import('../main.ts');
    return serve(config);
  },
};
