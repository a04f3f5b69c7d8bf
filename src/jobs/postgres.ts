import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { migrate, type Database } from './schema.js';
import { SqlJobStore } from './sql-store.js';

/**
 * The job store shared by several raddraft replicas. Times are bigint columns; they are read back as numbers
 * (epoch milliseconds fit in 53 bits), so both stores return the same shapes.
 */
export async function openPostgresStore(
  url: string,
  maxAttempts: number,
  onIdleError: (err: Error) => void = () => undefined,
): Promise<SqlJobStore> {
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));
  const pool = new pg.Pool({ connectionString: url, max: 10, types });
  // An idle connection the server drops (restart, failover) is an event, not a crash: the pool reconnects.
  pool.on('error', onIdleError);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrate(db, 'postgres');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  // Kysely's destroy ends the pool.
  return new SqlJobStore(db, { dialect: 'postgres', maxAttempts, onClose: () => Promise.resolve() });
}
