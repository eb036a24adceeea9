import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { colorIcon, fillManifest, outlineIcon, zip } from '../src/chat/teams/app-package.ts';

/**
 * `npm run teams:package [-- -o FILE]`: the Teams app package (manifest.json with the app id from
 * the environment, color.png, outline.png) as the zip to upload in Teams or the Developer Portal.
 * `npm run teams:icons` writes the two icons into manifests/teams/ from their code.
 * The bot id is TEAMS_CLIENT_ID; the app id is TEAMS_APP_ID, or the client id when unset.
 */
const DIR = new URL('../manifests/teams/', import.meta.url).pathname;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { out: { type: 'string', short: 'o' } },
    allowPositionals: true,
  });
  if (positionals[0] === 'icons') {
    await writeFile(join(DIR, 'color.png'), colorIcon());
    await writeFile(join(DIR, 'outline.png'), outlineIcon());
    console.log(`wrote ${join(DIR, 'color.png')} and ${join(DIR, 'outline.png')}`);
    return 0;
  }
  const clientId = process.env.TEAMS_CLIENT_ID;
  if (!clientId) {
    console.error("TEAMS_CLIENT_ID: required, the bot's Microsoft App ID (a GUID) goes into the manifest");
    return 1;
  }
  const manifest = JSON.parse(await readFile(join(DIR, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  let filled: Record<string, unknown>;
  try {
    filled = fillManifest(manifest, { appId: process.env.TEAMS_APP_ID || clientId, botId: clientId });
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  }
  const out = resolve(values.out ?? 'dist/elevate-teams.zip');
  await mkdir(dirname(out), { recursive: true });
  await writeFile(
    out,
    zip([
      { name: 'manifest.json', data: Buffer.from(`${JSON.stringify(filled, null, 2)}\n`) },
      { name: 'color.png', data: await readFile(join(DIR, 'color.png')) },
      { name: 'outline.png', data: await readFile(join(DIR, 'outline.png')) },
    ]),
  );
  console.log(`wrote ${out} (app id ${filled.id})`);
  return 0;
}

process.exitCode = await main();
