import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config';

const dataDir = () => mkdtempSync(join(tmpdir(), 'cfg-'));

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration', () => {
  it('defaults to SQLite under DATA_DIR, in-process pub/sub, simulators on, port 4000', () => {
    const dir = dataDir();
    const c = loadConfig({ DATA_DIR: dir });
    expect(c.database).toEqual({ driver: 'sqlite', path: join(dir, 'orders.sqlite3') });
    expect(c.redisUrl).toBeUndefined();
    expect(c.paymentSimulator).toBe(true);
    expect(c.port).toBe(4000);
    expect(c.host).toBe('127.0.0.1');
    expect(c.publicBaseUrl).toBeUndefined();
    expect(c.paymentTimeoutSeconds).toBe(900);
    expect(c.paymentQueryDelays).toEqual([10, 30, 60, 300, 600]);
  });

  it('keeps a generated development JWT secret across restarts', () => {
    const dir = dataDir();
    expect(loadConfig({ DATA_DIR: dir }).jwtSecret).toBe(loadConfig({ DATA_DIR: dir }).jwtSecret);
  });

  it('reports every bad variable at once, one line each naming it', () => {
    const lines = problems({ PORT: 'eighty', DATABASE_URL: 'mysql://x', REDIS_URL: 'http://x', PAYMENT_QUERY_DELAYS: '30,10' });
    expect(lines).toHaveLength(4);
    expect(lines.map((l) => l.split(':')[0]).sort()).toEqual(['DATABASE_URL', 'PAYMENT_QUERY_DELAYS', 'PORT', 'REDIS_URL']);
  });

  it('requires JWT_SECRET in production and turns the simulators off there', () => {
    expect(problems({ NODE_ENV: 'production', DATA_DIR: dataDir() })).toEqual(['JWT_SECRET: required when NODE_ENV=production']);
    const c = loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), DATA_DIR: dataDir() });
    expect(c.paymentSimulator).toBe(false);
  });

  it('a provider configured halfway names each missing variable', () => {
    const lines = problems({ WECHATPAY_MCHID: '1900000001', DATA_DIR: dataDir() });
    expect(lines).toContain('WECHATPAY_APPID: required because WECHATPAY_MCHID is set');
    expect(lines).toHaveLength(6);
  });

  it('reads PostgreSQL from DATABASE_URL', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://u@h:5432/db', DATA_DIR: dataDir() }).database).toEqual({
      driver: 'postgresql',
      url: 'postgres://u@h:5432/db',
    });
  });
});
