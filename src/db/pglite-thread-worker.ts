/**
 * The worker side of `pglite-thread.ts`: owns the PGlite instance and runs what the main thread
 * asks, one message at a time in arrival order (PGlite itself runs one query or transaction at a
 * time). Not imported by anything; started as a worker thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, parse, protocol, type Results, type Transaction } from '@electric-sql/pglite';
import type { Reply, Request } from './pglite-thread.ts';

const port = parentPort;
if (!port) throw new Error('pglite-thread-worker.ts runs as a worker thread');

/** Ends an open transaction when the main thread says so: commit, or roll back. */
interface OpenTransaction {
  tx: Transaction;
  finish(commit: boolean): void;
  done: Promise<void>;
}

const ROLLBACK = Symbol('rollback');
const transactions = new Map<number, OpenTransaction>();
const identity = (value: unknown) => value;

let pg: PGlite;
try {
  pg = await PGlite.create((workerData as { dataDir: string }).dataDir);
  port.postMessage({ id: 0, result: 'ready' } satisfies Reply);
} catch (error) {
  port.postMessage({ id: 0, error: errorFields(error) } satisfies Reply);
  throw error;
}

port.on('message', (request: Request) => {
  run(request).then(
    (result) => port.postMessage({ id: request.id, result } satisfies Reply),
    (error: unknown) => port.postMessage({ id: request.id, error: errorFields(error) } satisfies Reply),
  );
});

async function run(request: Request): Promise<unknown> {
  const target = request.tx === undefined ? pg : transactions.get(request.tx)?.tx;
  switch (request.op) {
    case 'query': {
      if (!target) throw new Error(`transaction ${request.tx} is not open`);
      // Drizzle's parsers only keep some types as text; the same, by type id, here.
      const parsers = Object.fromEntries((request.keepText ?? []).map((type) => [type, identity]));
      const options = { rowMode: request.rowMode, parsers };
      const params = request.params ?? [];
      const result: Results =
        (await preparedQuery(request.sql, params, options, request.tx !== undefined)) ??
        (await target.query(request.sql, params, options));
      return { rows: result.rows, fields: result.fields, affectedRows: result.affectedRows };
    }
    case 'exec':
      if (!target) throw new Error(`transaction ${request.tx} is not open`);
      return (await target.exec(request.sql)).map((r) => ({
        rows: r.rows,
        fields: r.fields,
        affectedRows: r.affectedRows,
      }));
    case 'begin':
      return begin(request.tx ?? 0);
    case 'end': {
      const open = transactions.get(request.tx ?? 0);
      if (!open) return undefined;
      transactions.delete(request.tx ?? 0);
      open.finish(request.commit === true);
      await open.done;
      return undefined;
    }
    case 'close':
      await pg.close();
      return undefined;
  }
}

/** A statement prepared once by its text: its name, parameter types and row description. */
interface Prepared {
  name: string;
  paramTypes: number[];
  /** The RowDescription of its result (absent for a statement that returns no rows). */
  row: BackendMessage | undefined;
}
type BackendMessage = Awaited<ReturnType<PGlite['execProtocolStream']>>[number];

/**
 * Statements prepared so far, by SQL text. PGlite's `query()` sends Parse, Describe, Bind,
 * Describe, Execute and Sync as six calls into PostgreSQL, and parses and plans the statement
 * every time: about 0.7 ms of CPU for a one-row lookup by key, against 0.14 ms for a prepared
 * statement bound and executed in one call. The app's statements repeat (drizzle builds the same
 * text for the same query), so each is prepared on its first use (Parse and Describe, kept in this
 * session like any named statement; PostgreSQL re-plans it after a schema change) and afterwards
 * costs one call. Statements with many parameters (bulk inserts, long id lists) vary in length
 * and take PGlite's `query()`, as does everything once the cache is full.
 */
const statements = new Map<string, Prepared>();
const MAX_STATEMENTS = 2_000;
const MAX_PREPARED_PARAMETERS = 64;
/** Names are never reused: a failed Parse and Describe may still have left its statement behind. */
let statementNumber = 0;

/**
 * Runs `sql` as a prepared statement, preparing it first if needed; undefined when it is not to be
 * prepared (the caller then runs PGlite's `query()`). In a transaction (`inTransaction`), PGlite's
 * transaction lock is already held by it; outside one, it is taken here, as `pg.query` does, so
 * the statement never runs inside someone else's transaction.
 */
async function preparedQuery(
  sql: string,
  params: unknown[],
  options: { rowMode?: 'array' | 'object'; parsers: Record<number, (value: unknown) => unknown> },
  inTransaction: boolean,
): Promise<Results | undefined> {
  let statement = statements.get(sql);
  if (!statement && (params.length > MAX_PREPARED_PARAMETERS || statements.size >= MAX_STATEMENTS)) {
    return undefined;
  }
  const run = async () => {
    if (!statement) {
      const name = `elevate_${++statementNumber}`;
      const described = await pg.execProtocolStream(
        concat([
          protocol.serialize.parse({ name, text: sql }),
          protocol.serialize.describe({ type: 'S', name }),
          protocol.serialize.sync(),
        ]),
        { syncToFs: false },
      );
      statement = {
        name,
        paramTypes: parse.parseDescribeStatementResults(described),
        row: described.find((m) => m.name === 'rowDescription'),
      };
      statements.set(sql, statement);
    }
    const { name, paramTypes, row } = statement;
    const values = params.map((param, i) => {
      if (param === null || param === undefined) return null;
      const serialize = pg.serializers[paramTypes[i] ?? 0];
      return serialize ? serialize(param) : String(param);
    });
    const messages = await pg.execProtocolStream(
      concat([
        protocol.serialize.bind({ statement: name, values }),
        protocol.serialize.execute({}),
        protocol.serialize.sync(),
      ]),
      { syncToFs: false },
    );
    if (!inTransaction) await pg.syncToFs();
    // The parsers merged once per set of types kept as text: given as an option, parseResults
    // would copy PGlite's whole parser table (hundreds of entries) on every call.
    const [result] = parse.parseResults(row ? [row, ...messages] : messages, parsersFor(options.parsers), {
      rowMode: options.rowMode,
    });
    return result as Results;
  };
  return inTransaction
    ? pg._runExclusiveQuery(run)
    : pg._runExclusiveTransaction(() => pg._runExclusiveQuery(run));
}

const mergedParsers = new Map<string, typeof pg.parsers>();
/** PGlite's parsers with `overrides` on top, made once per set of overridden types. */
function parsersFor(overrides: Record<number, (value: unknown) => unknown>): typeof pg.parsers {
  const key = Object.keys(overrides).join(',');
  let merged = mergedParsers.get(key);
  if (!merged) {
    merged = { ...pg.parsers, ...overrides };
    mergedParsers.set(key, merged);
  }
  return merged;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Opens a transaction that stays open until `end`; answers once it has begun. */
function begin(id: number): Promise<void> {
  return new Promise((begun, failed) => {
    let finish: (commit: boolean) => void = () => {};
    const done = pg
      .transaction(
        (tx) =>
          new Promise<void>((commit, rollback) => {
            finish = (ok) => (ok ? commit() : rollback(ROLLBACK));
            transactions.set(id, { tx, finish: (ok) => finish(ok), done });
            begun();
          }),
      )
      .catch((error: unknown) => {
        if (error !== ROLLBACK) throw error;
      });
    done.catch(failed);
  });
}

/** An error as plain fields (PostgreSQL's code, detail, constraint… survive the thread boundary). */
function errorFields(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const fields: Record<string, unknown> = { message: error.message, name: error.name };
  for (const [key, value] of Object.entries(error)) {
    if (typeof value === 'string' || typeof value === 'number') fields[key] = value;
  }
  return fields;
}
