import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { migrate, type Database } from './schema.js';
import { SqlJobStore } from './sql-store.js';

/** Prepared statements kept per SQL text; a store issues a few dozen distinct ones, and this bounds any more. */
const STATEMENT_CACHE = 256;

/**
 * The database as Kysely's SQLite driver sees it, with each statement prepared once: the driver prepares the SQL of
 * every query anew, which costs more CPU than running the query itself for the job store's small reads and writes.
 */
function withStatementCache(sqlite: BetterSqlite3.Database): { close(): void; prepare(sql: string): BetterSqlite3.Statement } {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sql) {
      let stmt = cache.get(sql);
      if (!stmt) {
        if (cache.size >= STATEMENT_CACHE) cache.clear();
        stmt = sqlite.prepare(sql);
        cache.set(sql, stmt);
      }
      return stmt;
    },
  };
}

/** The embedded job store: one SQLite file in the data directory, in WAL mode so readers never block the worker. */
export async function openSqliteStore(dataDir: string, maxAttempts: number): Promise<SqlJobStore> {
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'raddraft.sqlite');
  const sqlite = new BetterSqlite3(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  await migrate(db, 'sqlite');
  return new SqlJobStore(db, { dialect: 'sqlite', maxAttempts, onClose: () => Promise.resolve() });
}
