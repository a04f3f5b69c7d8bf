import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { migrate, type Database } from './schema.js';
import { SqlJobStore } from './sql-store.js';

/** The embedded job store: one SQLite file in the data directory, in WAL mode so readers never block the worker. */
export async function openSqliteStore(dataDir: string, maxAttempts: number): Promise<SqlJobStore> {
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'raddraft.sqlite');
  const sqlite = new BetterSqlite3(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  await migrate(db, 'sqlite');
  return new SqlJobStore(db, { dialect: 'sqlite', maxAttempts, onClose: () => Promise.resolve() });
}
