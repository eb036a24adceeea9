import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync, inflateSync } from 'node:zlib';
import { expect, test } from 'vitest';
import { parseCommand } from '../../../src/chat/command-text.ts';

/**
 * manifests/teams is the app Teams installs: its manifest validates against Microsoft's own schema
 * (shipped offline in npm @microsoft/app-manifest), its commands are the ones the bot understands,
 * its icons have the sizes and colours Teams demands, and `npm run teams:package` zips it with the
 * app id from the environment.
 */

const require = createRequire(import.meta.url);
const DIR = new URL('../../../manifests/teams/', import.meta.url).pathname;
const manifest = JSON.parse(await readFile(join(DIR, 'manifest.json'), 'utf8')) as {
  manifestVersion: string;
  bots: { botId: string; commandLists: { commands: { title: string }[] }[] }[];
};

function validator() {
  const Ajv = require('ajv-draft-04') as new (
    o: object,
  ) => {
    compile(s: object): ((d: unknown) => boolean) & { errors?: unknown[] };
  };
  const addFormats = require('ajv-formats') as (ajv: unknown) => void;
  const version = manifest.manifestVersion;
  const schema = require(
    `@microsoft/app-manifest/build/json-schemas/teams/v${version}/MicrosoftTeams.schema.json`,
  );
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv.compile(schema);
}

test('the manifest validates against the official Teams schema of its version, the newest shipped', () => {
  const validate = validator();
  const ok = validate(manifest);
  expect(validate.errors ?? []).toEqual([]);
  expect(ok).toBe(true);
  const schemas = new URL(
    '../../../node_modules/@microsoft/app-manifest/build/json-schemas/teams/',
    import.meta.url,
  );
  const shipped = readdirSync(schemas)
    .filter((v) => /^v\d+\.\d+$/.test(v))
    .map((v) => v.slice(1))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  expect(manifest.manifestVersion).toBe(shipped.at(-1));
  // And a broken one does not (the check can fail).
  expect(validator()({ ...manifest, accentColor: 'indigo', bots: [{ botId: 'x' }] })).toBe(false);
});

test('the command list is what the bot understands', () => {
  const titles = manifest.bots[0]?.commandLists[0]?.commands.map((c) => c.title) ?? [];
  expect(titles).toEqual(['elevate', 'activate', 'status', 'approvals', 'admin', 'help']);
  for (const title of titles) {
    // The bot strips a leading "elevate" and parses the rest as Slack's /elevate does.
    const words = title === 'elevate' ? '' : title;
    expect(parseCommand(words).verb).not.toBe('unknown');
  }
});

/** Width, height and RGBA pixels of a PNG we wrote (8-bit RGBA, no filters). */
function decodePng(data: Buffer) {
  const width = data.readUInt32BE(16);
  const height = data.readUInt32BE(20);
  expect(data[24]).toBe(8);
  expect(data[25]).toBe(6);
  const idat: Buffer[] = [];
  for (let at = 8; at < data.length; ) {
    const length = data.readUInt32BE(at);
    const type = data.toString('ascii', at + 4, at + 8);
    if (type === 'IDAT') idat.push(data.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const pixels: [number, number, number, number][] = [];
  for (let y = 0; y < height; y++) {
    const row = raw.subarray(y * (1 + width * 4), (y + 1) * (1 + width * 4));
    expect(row[0]).toBe(0);
    for (let x = 0; x < width; x++) {
      const p = row.subarray(1 + x * 4, 5 + x * 4);
      pixels.push([p[0] ?? 0, p[1] ?? 0, p[2] ?? 0, p[3] ?? 0]);
    }
  }
  return { width, height, pixels };
}

test('icons: colour 192×192 opaque, outline 32×32 white on transparent', async () => {
  const color = decodePng(await readFile(join(DIR, 'color.png')));
  expect([color.width, color.height]).toEqual([192, 192]);
  expect(color.pixels.every((p) => p[3] === 255)).toBe(true);
  const outline = decodePng(await readFile(join(DIR, 'outline.png')));
  expect([outline.width, outline.height]).toEqual([32, 32]);
  const kinds = new Set(outline.pixels.map((p) => p.join(',')));
  expect(kinds).toEqual(new Set(['255,255,255,255', '0,0,0,0']));
});

/** The files of a ZIP we wrote, from its central directory. */
function unzip(data: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const end = data.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = data.readUInt16LE(end + 10);
  let at = data.readUInt32LE(end + 16);
  for (let i = 0; i < count; i++) {
    const size = data.readUInt32LE(at + 20);
    const nameLength = data.readUInt16LE(at + 28);
    const offset = data.readUInt32LE(at + 42);
    const name = data.toString('utf8', at + 46, at + 46 + nameLength);
    const localName = data.readUInt16LE(offset + 26);
    const localExtra = data.readUInt16LE(offset + 28);
    const start = offset + 30 + localName + localExtra;
    files.set(name, inflateRawSync(data.subarray(start, start + size)));
    at += 46 + nameLength;
  }
  return files;
}

test('npm run teams:package writes the upload zip with the app id from the environment', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'elevate-teams-package-'));
  try {
    const out = join(dir, 'app.zip');
    const clientId = '11111111-2222-3333-4444-555555555555';
    const bin = new URL('../../../bin/teams-package.ts', import.meta.url).pathname;
    const env = { PATH: process.env.PATH ?? '', TEAMS_CLIENT_ID: clientId };
    await promisify(execFile)(process.execPath, [bin, '-o', out], { env });
    const files = unzip(await readFile(out));
    expect([...files.keys()].sort()).toEqual(['color.png', 'manifest.json', 'outline.png']);
    const packaged = JSON.parse(String(files.get('manifest.json'))) as {
      id: string;
      bots: { botId: string }[];
    };
    expect(packaged.id).toBe(clientId);
    expect(packaged.bots[0]?.botId).toBe(clientId);
    expect(validator()(packaged)).toBe(true);
    expect(files.get('color.png')?.equals(await readFile(join(DIR, 'color.png')))).toBe(true);
    // Without the id, a clear line and a failure.
    const failed = await promisify(execFile)(process.execPath, [bin, '-o', out], {
      env: { PATH: env.PATH },
    }).catch((e: { code: number; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1, stderr: expect.stringMatching(/^TEAMS_CLIENT_ID: required/) });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
