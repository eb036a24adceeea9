/**
 * PGlite in a worker thread. PGlite is PostgreSQL compiled to WASM: every statement runs
 * synchronously on the thread that owns it, and in the server's thread that is time in which no
 * request is read or acked. Here the instance lives in a worker (`pglite-thread-worker.ts`), and
 * this side offers what drizzle's PGlite driver calls — `query`, `exec`, `transaction` — as
 * messages to it, so the server's thread only builds queries and maps rows.
 *
 * Same semantics as PGlite in-process: one connection, statements and transactions one at a time;
 * a query outside a transaction waits for an open transaction to end.
 */
import { Worker } from 'node:worker_threads';

/** A message to the worker. `tx` names an open transaction (begun with `begin`). */
export type Request = { id: number; tx?: number } & (
  | {
      op: 'query';
      sql: string;
      params?: unknown[];
      rowMode?: 'array' | 'object';
      /** Type ids whose values stay text (drizzle parses dates itself). */
      keepText?: number[];
    }
  | { op: 'exec'; sql: string }
  | { op: 'begin' }
  | { op: 'end'; commit: boolean }
  | { op: 'close' }
);

/** A request before it is numbered. */
type Ask = Request extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/** The worker's answer to request `id` (0: the start-up). */
export type Reply = { id: number; result?: unknown; error?: Record<string, unknown> };

/** A query's result, as PGlite returns it. */
export interface QueryResult {
  rows: unknown[];
  fields: { name: string; dataTypeID: number }[];
  affectedRows?: number;
}

type QueryOptions = { rowMode?: 'array' | 'object'; parsers?: Record<number, unknown> };

/** What drizzle's PGlite driver uses of a client, or of the transaction it opens. */
export interface PgliteQueries {
  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult>;
  exec(sql: string): Promise<QueryResult[]>;
}

/** PGlite behind a worker thread: pass it to drizzle's PGlite driver as the client. */
export interface PgliteThread extends PgliteQueries {
  transaction<T>(work: (tx: PgliteQueries) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Starts PGlite on `dataDir` (`memory://` for none) in a worker thread; resolves once it is open. */
export async function startPgliteThread(dataDir: string): Promise<PgliteThread> {
  const worker = new Worker(new URL('./pglite-thread-worker.ts', import.meta.url), {
    workerData: { dataDir },
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 1;
  let nextTx = 1;
  let failure: Error | undefined;
  // Answer 0 is the worker's start-up: PGlite open, or why not.
  const ready = new Promise((resolve, reject) => pending.set(0, { resolve, reject }));

  // The worker keeps the process alive only while an answer is awaited, as a socket would.
  const settle = (id: number) => {
    const entry = pending.get(id);
    pending.delete(id);
    if (pending.size === 0) worker.unref();
    return entry;
  };
  worker.on('message', (reply: Reply) => {
    const entry = settle(reply.id);
    if (reply.error) entry?.reject(asError(reply.error));
    else entry?.resolve(reply.result);
  });
  const failAll = (error: Error) => {
    failure = error;
    for (const id of [...pending.keys()]) settle(id)?.reject(error);
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`the PGlite thread exited (${code})`)));

  const send = (request: Ask): Promise<unknown> => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...request, id });
    });
  };

  const queries = (tx?: number): PgliteQueries => ({
    query: (sql, params, options) =>
      send({
        op: 'query',
        tx,
        sql,
        params,
        rowMode: options?.rowMode,
        keepText: Object.keys(options?.parsers ?? {}).map(Number),
      }) as Promise<QueryResult>,
    exec: (sql) => send({ op: 'exec', tx, sql }) as Promise<QueryResult[]>,
  });

  await ready;
  return {
    ...queries(),
    async transaction(work) {
      const tx = nextTx++;
      await send({ op: 'begin', tx });
      let result: Awaited<ReturnType<typeof work>>;
      try {
        result = await work(queries(tx));
      } catch (error) {
        await send({ op: 'end', tx, commit: false }).catch(() => {});
        throw error;
      }
      await send({ op: 'end', tx, commit: true });
      return result;
    },
    async close() {
      if (!failure) await send({ op: 'close' });
      await worker.terminate();
    },
  };
}

/** The worker's error fields as an Error again (drizzle and our code read `code`, `constraint`…). */
function asError(fields: Record<string, unknown>): Error {
  const error = new Error(String(fields.message ?? 'PGlite error'));
  return Object.assign(error, fields);
}
