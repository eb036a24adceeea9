/**
 * `npm run bench`: the core bench (`core.ts`: latency of the use cases on a throwaway database),
 * then the Slack bench (`slack.ts`: the running server's ack latency and time-to-modal next to a
 * bare Bolt app, at 50, 100 and 200 requests/s). Both use the database DATABASE_URL names, else
 * PGlite. `npm run bench -- core` or `npm run bench -- slack` runs one of them.
 */
import { runCoreBench } from './core.ts';
import { runSlackBench } from './slack.ts';

const which = process.argv[2] ?? 'all';
if (!['all', 'core', 'slack'].includes(which)) {
  console.error(`usage: npm run bench [-- core|slack]   (got ${which})`);
  process.exit(2);
}
if (which !== 'slack') await runCoreBench();
if (which === 'all') console.log('');
if (which !== 'core') await runSlackBench();
