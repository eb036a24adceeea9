import { readFileSync } from 'node:fs';

/**
 * The V8 flags `npm start` gives `elevate serve` (package.json's start script: a smaller young
 * generation and old-generation growth, see README, *Revocation at expiry*): the benches run the
 * server and the replicas with them, as production does.
 */
export const START_FLAGS: string[] =
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).scripts.start.match(
    /--[a-z-]+=\S+/g,
  ) ?? [];
