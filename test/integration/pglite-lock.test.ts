import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { DatabaseInUseError, openDatabase } from '../../src/db/client.ts';

// Two processes on one PGlite directory would each work on their own copy and lose writes.
test('an embedded data directory held by a running process is refused; a stale lock is taken over', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'elevate-lock-'));
  const lock = join(dataDir, 'elevate.lock');
  writeFileSync(lock, String(process.ppid)); // our parent: certainly running, certainly not us
  const refused = await openDatabase({ dataDir }).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(DatabaseInUseError);
  expect((refused as Error).message).toBe(
    `it is in use by process ${process.ppid} (stop that first, or set DATABASE_URL to share PostgreSQL between processes)`,
  );

  writeFileSync(lock, '2147483646'); // no such process
  const database = await openDatabase({ dataDir });
  expect(readFileSync(lock, 'utf8')).toBe(String(process.pid));
  await database.close();
  expect(() => readFileSync(lock)).toThrow();
});
