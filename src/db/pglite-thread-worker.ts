/**
 * The worker side of `pglite-thread.ts`: owns the PGlite instance and runs what the main thread
 * asks, one message at a time in arrival order (PGlite itself runs one query or transaction at a
 * time). Not imported by anything; started as a worker thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite';
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
      const result: Results = await target.query(request.sql, request.params, {
        rowMode: request.rowMode,
        parsers,
      });
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
