import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { JobStore } from '../../src/jobs/job-store.js';
import { openPostgresStore } from '../../src/jobs/postgres.js';
import { openSqliteStore } from '../../src/jobs/sqlite.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

/** A job store to test on: opened fresh per test, and removed after. */
export interface Backend {
  open(): Promise<JobStore>;
  cleanup(): Promise<void>;
}

/** A SQLite store in a temporary directory (three attempts before a job is dead). */
export function sqlite(): Backend {
  let dir: string | undefined;
  return {
    open: async () => openSqliteStore((dir ??= await mkdtemp(path.join(tmpdir(), 'raddraft-store-'))), 3),
    cleanup: async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
}

/** A PostgreSQL store in a database of its own on the local server. */
export function postgres(): Backend {
  let db: TestDatabase | undefined;
  return {
    open: async () => openPostgresStore((db ??= await createTestDatabase()).url, 3),
    cleanup: async () => {
      await db?.drop();
      db = undefined;
    },
  };
}
