import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config';
import type { ReconciliationService } from '../../src/reconciliation/reconciliation.service';
import { ReconciliationScheduler, scheduledInstant } from '../../src/reconciliation/scheduler';
import { createLogger } from '../../src/shared/logger';

const at = (text: string) => new Date(`${text}+08:00`);

describe('ReconciliationScheduler (RECONCILE_DAILY_AT, China time)', () => {
  const setup = (failing: string[] = []) => {
    const calls: Array<[string, string, { actor: string; notRunSince?: Date }]> = [];
    const service = {
      billingProviders: () => ['wechatpay', 'alipay'],
      reconcile: async (provider: string, date: string, options: { actor: string; notRunSince?: Date }) => {
        calls.push([provider, date, options]);
        if (failing.includes(provider)) throw new Error('bill refused');
        return null;
      },
    } as unknown as ReconciliationService;
    return { calls, scheduler: new ReconciliationScheduler(service, '10:30', createLogger('silent')) };
  };

  it('reconciles yesterday for every provider once the time has come, once a day', async () => {
    const { calls, scheduler } = setup();
    await scheduler.tick(at('2026-11-25T10:29:59'));
    expect(calls).toEqual([]);
    await scheduler.tick(at('2026-11-25T10:30:00'));
    expect(calls).toEqual([
      ['wechatpay', '2026-11-24', { actor: 'schedule', notRunSince: at('2026-11-25T10:30:00') }],
      ['alipay', '2026-11-24', { actor: 'schedule', notRunSince: at('2026-11-25T10:30:00') }],
    ]);
    await scheduler.tick(at('2026-11-25T23:59:00'));
    await scheduler.tick(at('2026-11-26T00:01:00'));
    expect(calls).toHaveLength(2);
    await scheduler.tick(at('2026-11-26T18:00:00'));
    expect(calls.slice(2).map(([p, d]) => [p, d])).toEqual([
      ['wechatpay', '2026-11-25'],
      ['alipay', '2026-11-25'],
    ]);
  });

  it('one provider failing does not stop the others', async () => {
    const { calls, scheduler } = setup(['wechatpay']);
    await scheduler.tick(at('2026-11-25T11:00:00'));
    expect(calls.map(([p]) => p)).toEqual(['wechatpay', 'alipay']);
  });

  it('is off without a time', async () => {
    const { calls } = setup();
    const off = new ReconciliationScheduler({ billingProviders: () => ['wechatpay'] } as unknown as ReconciliationService, undefined, createLogger('silent'));
    off.start();
    await off.stop();
    expect(calls).toEqual([]);
  });

  it('scheduledInstant is HH:MM China time of the day', () => {
    expect(scheduledInstant('2026-11-25', '00:15').toISOString()).toBe('2026-11-24T16:15:00.000Z');
  });
});

describe('RECONCILE_DAILY_AT', () => {
  const base = { JWT_SECRET: 'a-secret-of-sixteen-chars', DATA_DIR: '/tmp/unused-reconcile-config' };

  it('is off by default and HH:MM China time when set', () => {
    expect(loadConfig(base).reconcileDailyAt).toBeUndefined();
    expect(loadConfig({ ...base, RECONCILE_DAILY_AT: '10:30' }).reconcileDailyAt).toBe('10:30');
  });

  it('refuses anything else, naming the variable', () => {
    for (const bad of ['25:00', '9:30', '10:60', 'daily']) {
      expect(() => loadConfig({ ...base, RECONCILE_DAILY_AT: bad })).toThrow(ConfigError);
      try {
        loadConfig({ ...base, RECONCILE_DAILY_AT: bad });
      } catch (err) {
        expect((err as ConfigError).problems[0]).toMatch(/^RECONCILE_DAILY_AT: must be HH:MM/);
      }
    }
  });
});
