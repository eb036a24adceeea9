/**
 * `npm run bench`: the core bench (`core.ts`: latency of the use cases on a throwaway database),
 * the Slack bench (`slack.ts`: the running server's ack latency and time-to-modal next to a
 * bare Bolt app, at 50, 100 and 200 requests/s), then the revocation bench (`revocation.ts`:
 * revocation lag when 10,000 and 100,000 activations end in the same second). All use the
 * database DATABASE_URL names, else PGlite. `npm run bench -- core|slack|revocation` runs one.
 */
import { runCoreBench } from './core.ts';
import { runRevocationBench } from './revocation.ts';
import { runSlackBench } from './slack.ts';
import { runSlackCpuBench } from './slack-cpu.ts';

const which = process.argv[2] ?? 'all';
if (!['all', 'core', 'slack', 'slack-cpu', 'revocation'].includes(which)) {
  console.error(`usage: npm run bench [-- core|slack|slack-cpu|revocation]   (got ${which})`);
  process.exit(2);
}
if (which === 'all' || which === 'core') await runCoreBench();
if (which === 'all') console.log('');
if (which === 'all' || which === 'slack') await runSlackBench();
if (which === 'slack-cpu') await runSlackCpuBench();
if (which === 'all') console.log('');
if (which === 'all' || which === 'revocation') await runRevocationBench();
