import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { signToken, type Role } from '../../src/shared/auth';
import { createLogger } from '../../src/shared/logger';
import { createPostgresDatabase } from './services';

export type Db = 'sqlite' | 'postgresql';

export const TEST_JWT_SECRET = 'test-secret-for-the-test-suite-only';

export interface TestApp {
  app: App;
  url: string;
  token(sub: string, role?: Role): string;
  /** POST /graphql; returns the parsed body (data and errors). */
  gql<T = any>(query: string, variables?: Record<string, unknown>, token?: string): Promise<{ data?: T; errors?: any[] }>;
  close(): Promise<void>;
}

/** Starts the real server on 127.0.0.1 and a random port, on a fresh SQLite file or a fresh PostgreSQL database. */
export async function startTestApp(db: Db, env: Record<string, string> = {}): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'orders-test-'));
  // A given DATABASE_URL is shared (several instances on one database); otherwise each app gets a fresh one.
  const pgDb = db === 'postgresql' && !env.DATABASE_URL ? await createPostgresDatabase() : null;
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    DATABASE_URL: env.DATABASE_URL ?? (pgDb ? pgDb.url : `sqlite:${join(dataDir, 'test.sqlite3')}`),
    JWT_SECRET: TEST_JWT_SECRET,
    SEED_DEMO: 'false',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    RATE_LIMIT_PER_MINUTE: '100000',
    ...env,
  });
  const app = await startApp(config, createLogger(config.logLevel));
  const token = (sub: string, role: Role = 'customer') => signToken(TEST_JWT_SECRET, { id: sub, role });
  return {
    app,
    url: app.url,
    token,
    async gql(query, variables, bearer) {
      const res = await fetch(`${app.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as { data?: any; errors?: any[] };
    },
    async close() {
      await app.close();
      await pgDb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The first error's code, for assertions. */
export const codeOf = (res: { errors?: any[] }): string | undefined => res.errors?.[0]?.extensions?.code;
