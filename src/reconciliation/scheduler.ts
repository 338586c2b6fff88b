import type { Logger } from '../shared/logger';
import { chinaDate, previousDate } from './bill';
import type { ReconciliationService } from './reconciliation.service';

/** How often an instance looks at the clock. */
const TICK_MS = 30_000;

/**
 * The optional daily run (`RECONCILE_DAILY_AT=HH:MM`, China time; off when unset): once that time of a China day has
 * passed, yesterday is reconciled for every provider that serves bills. An instance started later that day catches
 * up at once.
 *
 * Safe with many instances: every instance may look, but the run of a (provider, day) is claimed on its report row
 * (a conditional update), and a scheduled run skips a day already reconciled since that day's scheduled time, so one
 * instance does the work and the others find it done.
 */
export class ReconciliationScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** The last China day whose scheduled run this instance completed (saves a database look per tick). */
  private doneFor: string | null = null;

  constructor(
    private readonly reconciliation: ReconciliationService,
    /** `HH:MM`, China time; undefined: never. */
    private readonly dailyAt: string | undefined,
    private readonly log: Logger,
  ) {}

  start(tickMs = TICK_MS): void {
    if (!this.dailyAt || this.timer) return;
    this.timer = setInterval(() => void this.tick(), tickMs);
    this.timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One look at the clock: runs yesterday's reconciliation when today's time has come and it has not run yet. */
  tick(now = new Date()): Promise<void> {
    // `.finally` runs after this assignment even when the pass has nothing to await.
    this.running ??= this.pass(now).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(now: Date): Promise<void> {
    const today = chinaDate(now);
    const slot = scheduledInstant(today, this.dailyAt!);
    if (now < slot || this.doneFor === today) return;
    const date = previousDate(today);
    for (const provider of this.reconciliation.billingProviders()) {
      try {
        const report = await this.reconciliation.reconcile(provider, date, { actor: 'schedule', notRunSince: slot });
        if (report) this.log.info({ provider, date, matched: report.matchedCount, totalsMatch: report.totalsMatch }, 'scheduled reconciliation done');
      } catch (err) {
        this.log.error({ provider, date, err: (err as Error).message }, 'scheduled reconciliation failed; run it by hand (npm run reconcile)');
      }
    }
    this.doneFor = today;
  }
}

/** The instant of `HH:MM` China time on a China day. */
export function scheduledInstant(date: string, hhmm: string): Date {
  return new Date(Date.parse(`${date}T${hhmm}:00+08:00`));
}
