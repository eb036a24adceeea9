import { crc32, deflateRawSync, deflateSync } from 'node:zlib';

/**
 * The Teams app package: the manifest with the bot's app id filled in, and its two icons, zipped
 * as Teams wants it for upload. PNG and ZIP are written here with node:zlib, so packaging needs
 * nothing downloaded.
 */

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The manifest for one deployment: the checked-in one carries zero GUIDs until the app id and bot id go in. */
export function fillManifest(manifest: Record<string, unknown>, ids: { appId: string; botId: string }) {
  for (const [name, value] of Object.entries(ids)) {
    if (!GUID.test(value))
      throw new Error(
        `${name === 'appId' ? 'TEAMS_APP_ID' : 'TEAMS_CLIENT_ID'}: expected a GUID, got "${value}"`,
      );
  }
  const bots = (manifest.bots as Record<string, unknown>[] | undefined) ?? [];
  return {
    ...manifest,
    id: ids.appId,
    bots: bots.map((bot) => ({ ...bot, botId: ids.botId })),
  };
}

// ---- PNG ----

const pngChunk = (type: string, data: Buffer) => {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
};

/** An RGBA PNG from a pixel function (`[r, g, b, a]` for each x, y). */
export function png(size: number, pixel: (x: number, y: number) => [number, number, number, number]): Buffer {
  const rows: Buffer[] = [];
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 4); // filter byte 0 (none), then RGBA
    for (let x = 0; x < size; x++) row.set(pixel(x, y), 1 + x * 4);
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA, deflate, no filter method, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(Buffer.concat(rows))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * Elevate's mark, an upward chevron over a bar ("raise your access"), in unit coordinates:
 * whether the point (u, v) in [0, 1]² is on it.
 */
function onMark(u: number, v: number): boolean {
  const stroke = 0.12;
  // The chevron: two strokes meeting at the top centre.
  const apexY = 0.22;
  const armY = 0.58;
  const half = 0.3;
  const t = (v - apexY) / (armY - apexY);
  if (t >= -0.1 && t <= 1.05) {
    const centre = 0.5;
    const offset = Math.abs(u - centre);
    const armX = t * half;
    if (Math.abs(offset - armX) < stroke * 0.75) return true;
  }
  // The bar beneath.
  return v > 0.7 && v < 0.7 + stroke && u > 0.22 && u < 0.78;
}

/** The 192×192 colour icon: the white mark on Elevate's indigo, with a margin as Teams asks. */
export function colorIcon(): Buffer {
  const size = 192;
  return png(size, (x, y) => {
    const u = (x + 0.5) / size;
    const v = (y + 0.5) / size;
    return onMark(u, v) ? [255, 255, 255, 255] : [79, 70, 229, 255];
  });
}

/** The 32×32 outline icon: the white mark on a transparent background. */
export function outlineIcon(): Buffer {
  const size = 32;
  return png(size, (x, y) =>
    onMark((x + 0.5) / size, (y + 0.5) / size) ? [255, 255, 255, 255] : [0, 0, 0, 0],
  );
}

// ---- ZIP ----

/** A ZIP archive of files at its root (deflated), as the Teams upload wants it. */
export function zip(files: { name: string; data: Buffer }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  // A fixed timestamp (1980-01-01): the same inputs give the same package.
  const dosTime = 0;
  const dosDate = (0 << 9) | (1 << 5) | 1;
  for (const file of files) {
    const name = Buffer.from(file.name, 'utf8');
    const compressed = deflateRawSync(file.data);
    const crc = crc32(file.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(dosTime, 10);
    local.writeUInt16LE(dosDate, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(file.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4); // made by
    central.writeUInt16LE(20, 6); // needed
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(dosTime, 12);
    central.writeUInt16LE(dosDate, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(file.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, compressed);
    centrals.push(central, name);
    offset += local.length + name.length + compressed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}
