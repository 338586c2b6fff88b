/**
 * `npm run reconcile -- --channel wechatpay --date 2026-11-25`: reconciles one provider's China day and prints the
 * report. Same configuration as `npm start`.
 *
 * By default it asks the running service (its `reconcile` mutation, with a short-lived admin token signed with
 * JWT_SECRET), at `--url`, else RECONCILE_URL, else PUBLIC_BASE_URL, else http://HOST:PORT. That is the one mode that
 * works everywhere: with the built-in simulators the bills live in the service's memory, and a run there takes the
 * day's claim like the service's own daily run.
 *
 * `--in-process` runs it in this process instead (the service need not be up): it opens the database and the
 * providers from the configuration, like one more instance, and closes them. Only with real credentials for that
 * provider: a simulator started here would know nothing of what the service processed.
 *
 * Exit status: 0 all matched (totals agree, nothing open), 3 open discrepancies or totals that differ, 1 the run
 * failed (bill refused, provider or service unreachable), 2 usage.
 */
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { startApp } from '../app';
import { ConfigError, loadConfig, type AppConfig } from '../config/config';
import { chinaDate, isDate, previousDate } from '../reconciliation/bill';
import { RECONCILABLE_PROVIDERS } from '../reconciliation/reconciliation.service';
import { signToken } from '../shared/auth';
import { createLogger } from '../shared/logger';

const USAGE = `usage: npm run reconcile -- --channel <${RECONCILABLE_PROVIDERS.join('|')}> [--date YYYY-MM-DD (China day, default yesterday)]
                              [--url http://service:4000] [--in-process] [--json]`;

interface Discrepancy {
  kind: string;
  paymentNo: string | null;
  refundNo: string | null;
  localAmount: number | null;
  providerAmount: number | null;
  state: string;
  note: string | null;
}

interface Report {
  provider: string;
  date: string;
  matchedCount: number;
  providerRowCount: number;
  providerPaymentCount: number;
  providerPaymentAmount: number;
  providerRefundCount: number;
  providerRefundAmount: number;
  providerTotalAmount: number;
  localPaymentCount: number;
  localPaymentAmount: number;
  localRefundCount: number;
  localRefundAmount: number;
  localTotalAmount: number;
  totalsMatch: boolean;
  runs: number;
  lastRunBy: string | null;
  discrepancies: Discrepancy[];
}

const REPORT_FIELDS = `provider date matchedCount providerRowCount providerPaymentCount providerPaymentAmount providerRefundCount
  providerRefundAmount providerTotalAmount localPaymentCount localPaymentAmount localRefundCount localRefundAmount localTotalAmount
  totalsMatch runs lastRunBy discrepancies { kind paymentNo refundNo localAmount providerAmount state note }`;

class RunFailed extends Error {}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        channel: { type: 'string' },
        provider: { type: 'string' },
        date: { type: 'string' },
        url: { type: 'string' },
        'in-process': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const provider = values.channel ?? values.provider;
  const date = values.date ?? previousDate(chinaDate());
  if (!provider || !(RECONCILABLE_PROVIDERS as readonly string[]).includes(provider) || !isDate(date)) {
    console.error(USAGE);
    return 2;
  }

  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) for (const line of err.problems) console.error(`config error: ${line}`);
    else console.error(err);
    return 1;
  }

  let report: Report;
  try {
    report = values['in-process'] ? await inProcess(config, provider, date) : await viaService(config, provider, date, values.url);
  } catch (err) {
    console.error(err instanceof RunFailed ? err.message : `reconciliation failed: ${(err as Error).message}`);
    return 1;
  }
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else print(report);
  const open = report.discrepancies.filter((d) => d.state === 'open').length;
  return open === 0 && report.totalsMatch ? 0 : 3;
}

/** The running service's `reconcile` mutation. */
async function viaService(config: AppConfig, provider: string, date: string, url?: string): Promise<Report> {
  const base = (url ?? process.env.RECONCILE_URL ?? config.publicBaseUrl ?? `http://${config.host}:${config.port}`).replace(/\/+$/, '');
  const token = signToken(config.jwtSecret, { id: 'cli', role: 'admin' }, '10m');
  let res: Response;
  try {
    res = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: `mutation($provider: String!, $date: String!) { reconcile(provider: $provider, date: $date) { ${REPORT_FIELDS} } }`,
        variables: { provider, date },
      }),
      signal: AbortSignal.timeout(10 * 60_000),
    });
  } catch (err) {
    throw new RunFailed(
      `the service at ${base} cannot be reached (${(err as Error).message}); start it (npm start), pass --url, or use --in-process with real credentials`,
    );
  }
  const body = (await res.json().catch(() => ({}))) as { data?: { reconcile?: Report }; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
  if (body.errors?.length) {
    const e = body.errors[0]!;
    const detail = e.extensions?.billError ? `, ${String(e.extensions.billError)}` : '';
    throw new RunFailed(`reconciliation of ${provider} ${date} failed (${String(e.extensions?.code ?? res.status)}${detail}): ${e.message}`);
  }
  if (!body.data?.reconcile) throw new RunFailed(`the service at ${base} answered HTTP ${res.status} without a report`);
  return body.data.reconcile;
}

/** In this process: one more instance for the duration of the run. */
async function inProcess(config: AppConfig, provider: string, date: string): Promise<Report> {
  if (!config[provider as 'wechatpay' | 'alipay' | 'stripe' | 'unionpay']) {
    throw new RunFailed(
      `${provider} has no credentials configured: its bills would come from a fresh simulator that knows nothing of the service's payments. Run without --in-process (the service must be up).`,
    );
  }
  const app = await startApp({ ...config, host: '127.0.0.1', port: 0, reconcileDailyAt: undefined }, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel));
  try {
    const report = (await app.services.reconciliation.reconcile(provider, date, { actor: 'cli' }))!;
    const discrepancies = await app.services.reconciliation.discrepanciesOf(report.id);
    return { ...report, discrepancies } as unknown as Report;
  } catch (err) {
    throw new RunFailed(`reconciliation of ${provider} ${date} failed: ${(err as Error).message}`);
  } finally {
    await app.close();
  }
}

function print(r: Report): void {
  const yuan = (fen: number | null) => (fen === null ? '—' : `${fen < 0 ? '-' : ''}${Math.trunc(Math.abs(fen) / 100)}.${String(Math.abs(fen) % 100).padStart(2, '0')}`);
  const open = r.discrepancies.filter((d) => d.state === 'open');
  console.log(`${r.provider} ${r.date}: ${r.providerRowCount} bill rows, ${r.matchedCount} matched, ${open.length} open discrepancies (run ${r.runs}, by ${r.lastRunBy ?? '?'})`);
  console.log(`  provider  collected ${yuan(r.providerPaymentAmount)} (${r.providerPaymentCount})  refunded ${yuan(r.providerRefundAmount)} (${r.providerRefundCount})  net ${yuan(r.providerTotalAmount)}`);
  console.log(`  local     collected ${yuan(r.localPaymentAmount)} (${r.localPaymentCount})  refunded ${yuan(r.localRefundAmount)} (${r.localRefundCount})  net ${yuan(r.localTotalAmount)}`);
  console.log(`  totals    ${r.totalsMatch ? 'agree' : 'DIFFER'}`);
  for (const d of r.discrepancies) {
    const subject = d.refundNo ? `refund ${d.refundNo} (payment ${d.paymentNo ?? '?'})` : `payment ${d.paymentNo ?? '?'}`;
    console.log(`  ${d.state.padEnd(9)} ${d.kind.padEnd(20)} ${subject}  local ${yuan(d.localAmount)}  provider ${yuan(d.providerAmount)}${d.note ? `  — ${d.note}` : ''}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
