import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { chinaDate, previousDate } from '../../src/reconciliation/bill';
import { ReconciliationReport } from '../../src/reconciliation/reconciliation-report.entity';
import type { AlipaySimulator } from '../../src/simulators/alipay';
import type { StripeSimulator } from '../../src/simulators/stripe';
import type { UnionPaySimulator } from '../../src/simulators/unionpay';
import type { WechatPaySimulator } from '../../src/simulators/wechatpay';
import { codeOf, startTestApp, type Db, type TestApp } from '../helpers/app';
import { eventually } from '../helpers/lifecycle';

const PAY = `mutation($input: PayOrderInput!) { payOrder(input: $input) { payment { id paymentNo } qrCodeUrl clientSecret } }`;
const ORDER = `query($id: ID!) { order(id: $id) { status paidAmount payments { paymentNo status } refunds { refundNo status reason } history { to actor } } }`;
const DISCREPANCY_FIELDS = `id kind paymentNo refundNo providerTransactionId localAmount providerAmount localStatus providerStatus state note resolvedBy`;
const REPORT_FIELDS = `id provider date matchedCount providerRowCount providerPaymentAmount providerRefundAmount providerTotalAmount
  localPaymentAmount localRefundAmount localTotalAmount totalsMatch runs lastRunBy openCount createdAt discrepancies { ${DISCREPANCY_FIELDS} }`;
const RECONCILE = `mutation($provider: String!, $date: String!) { reconcile(provider: $provider, date: $date) { ${REPORT_FIELDS} } }`;
const REPORT = `query($provider: String!, $date: String!) { reconciliationReport(provider: $provider, date: $date) { ${REPORT_FIELDS} } }`;

interface Discrepancy {
  id: string;
  kind: string;
  paymentNo: string | null;
  refundNo: string | null;
  localAmount: number | null;
  providerAmount: number | null;
  localStatus: string | null;
  providerStatus: string | null;
  state: string;
  note: string | null;
  resolvedBy: string | null;
}
interface Report {
  matchedCount: number;
  providerTotalAmount: number;
  localTotalAmount: number;
  totalsMatch: boolean;
  runs: number;
  openCount: number;
  discrepancies: Discrepancy[];
  [k: string]: unknown;
}

const databases: Db[] = inject('postgres') ? ['sqlite', 'postgresql'] : ['sqlite'];

/**
 * Reconciling a day against each simulator: its bill is what it processed (so a clean day matches), and every
 * discrepancy kind injected into the bill is found with the right kind. Repairs go through a provider query only.
 */
describe.each(databases)('reconciliation against the simulators on %s', (db) => {
  let t: TestApp;
  let admin: string;
  let alice: string;
  let wechat: WechatPaySimulator;
  let alipay: AlipaySimulator;
  let stripe: StripeSimulator;
  let unionpay: UnionPaySimulator;
  const today = chinaDate();
  const simulatorOf = (provider: string) => ({ wechatpay: wechat, alipay, stripe, unionpay })[provider as 'wechatpay' | 'alipay' | 'stripe' | 'unionpay'];

  beforeAll(async () => {
    // The query fallback waits an hour: a payment whose callback never comes stays unpaid here until reconciled.
    t = await startTestApp(db, { SIMULATOR_TIME_SCALE: '1000', PAYMENT_QUERY_DELAYS: '3600' });
    ({ wechatpay: wechat, alipay, stripe, unionpay } = t.app.providers.simulator as Required<typeof t.app.providers.simulator>);
    admin = t.token('root', 'admin');
    alice = t.token('alice');
    await t.gql(`mutation { createProduct(input: { sku: "TEA", name: "Tea", priceAmount: 10000, stock: 1000 }) { id } }`, {}, admin);
  });
  afterEach(() => {
    for (const sim of [wechat, alipay, stripe, unionpay]) sim.clearBillFaults();
  });
  afterAll(async () => {
    await t?.close();
  });

  const order = async (id: string) => (await t.gql(ORDER, { id }, admin)).data.order;
  const newOrder = async () =>
    (await t.gql(`mutation { createOrder(input: { items: [{ sku: "TEA", quantity: 1 }] }) { id totalAmount } }`, {}, alice)).data.createOrder as {
      id: string;
      totalAmount: number;
    };
  const startPaying = async (channel: string) => {
    const o = await newOrder();
    const res = await t.gql(PAY, { input: { orderId: o.id, channel } }, alice);
    expect(res.errors).toBeUndefined();
    const s = res.data.payOrder as { payment: { id: string; paymentNo: string }; qrCodeUrl?: string; clientSecret?: string };
    return { orderId: o.id, amount: o.totalAmount, paymentNo: s.payment.paymentNo, session: s };
  };
  /** The customer pays at the provider; `notify: false`: its callback never comes. */
  const payAtProvider = (channel: string, s: { qrCodeUrl?: string; clientSecret?: string }, notify = true) => {
    if (channel === 'WECHAT_NATIVE') expect(wechat.pay({ code_url: s.qrCodeUrl!, outcome: 'SUCCESS', notify }).ok).toBe(true);
    else if (channel === 'ALIPAY_QR') expect(alipay.pay({ qr_code: s.qrCodeUrl!, outcome: 'SUCCESS', notify }).ok).toBe(true);
    else if (channel === 'UNIONPAY_QR') expect(unionpay.pay({ qrCode: s.qrCodeUrl!, outcome: 'SUCCESS', notify }).ok).toBe(true);
    else expect(stripe.confirm({ client_secret: s.clientSecret!, outcome: 'SUCCESS', notify }).ok).toBe(true);
  };
  const paidOrder = async (channel: string) => {
    const p = await startPaying(channel);
    payAtProvider(channel, p.session);
    await eventually(() => order(p.orderId), (o) => o.status === 'PAID');
    return p;
  };
  /** A refund the provider confirms (at once, or by its notification a moment later). */
  const refund = async (orderId: string, amount: number) => {
    const res = await t.gql(`mutation($input: RefundOrderInput!) { refundOrder(input: $input) { refundNo status } }`, { input: { orderId, amount } }, admin);
    const refundNo = res.data.refundOrder.refundNo as string;
    await eventually(() => order(orderId), (o) => o.refunds.some((r: any) => r.refundNo === refundNo && r.status === 'SUCCEEDED'));
    return refundNo;
  };
  const reconcile = async (provider: string, date = today) => {
    const res = await t.gql(RECONCILE, { provider, date }, admin);
    expect(res.errors).toBeUndefined();
    return res.data.reconcile as Report;
  };
  const about = (r: Report, paymentNo: string, refundNo: string | null = null) =>
    r.discrepancies.find((d) => d.paymentNo === paymentNo && d.refundNo === refundNo);

  describe('a bill that cannot be trusted stops the run, writes no report and changes nothing', () => {
    const refused = (provider: string) => `The ${provider} bill for ${today} was refused and nothing was changed`;
    const cases: Array<[provider: string, channel: string, mode: 'hash' | 'truncate' | 'columns' | 'encoding', reason: string, message: string]> = [
      ['wechatpay', 'WECHAT_NATIVE', 'hash', 'HASH_MISMATCH', refused('wechatpay')],
      ['wechatpay', 'WECHAT_NATIVE', 'truncate', 'TRUNCATED', refused('wechatpay')],
      ['wechatpay', 'WECHAT_NATIVE', 'columns', 'UNEXPECTED_COLUMNS', refused('wechatpay')],
      ['wechatpay', 'WECHAT_NATIVE', 'encoding', 'ENCODING', refused('wechatpay')],
      ['alipay', 'ALIPAY_QR', 'truncate', 'TRUNCATED', refused('alipay')],
      ['alipay', 'ALIPAY_QR', 'columns', 'UNEXPECTED_COLUMNS', refused('alipay')],
      ['alipay', 'ALIPAY_QR', 'encoding', 'ENCODING', refused('alipay')],
      ['stripe', 'STRIPE_CARD', 'columns', 'UNEXPECTED_COLUMNS', refused('stripe')],
      ['unionpay', 'UNIONPAY_QR', 'truncate', 'TRUNCATED', refused('unionpay')],
      ['unionpay', 'UNIONPAY_QR', 'columns', 'UNEXPECTED_COLUMNS', refused('unionpay')],
      // UnionPay signs fileContent itself: a file that does not match its signature is a bad answer, not a bad file.
      ['unionpay', 'UNIONPAY_QR', 'hash', 'BAD_SIGNATURE', `The unionpay bill for ${today} could not be fetched: its answer failed signature verification`],
    ];
    it.each(cases)('%s bill (paid with %s) corrupted with %s → %s', async (provider, channel, mode, reason, message) => {
      // Paid at the provider, callback lost: a run that went ahead would repair it.
      const p = await startPaying(channel);
      payAtProvider(channel, p.session, false);
      simulatorOf(provider).corruptBill(mode);

      const res = await t.gql(RECONCILE, { provider, date: today }, admin);
      expect(codeOf(res)).toBe('PAYMENT_PROVIDER_ERROR');
      expect(res.errors![0].extensions.billError).toBe(reason);
      expect(res.errors![0].message).toContain(message);
      if (reason !== 'BAD_SIGNATURE') expect(res.errors![0].message).toContain(reason);

      expect((await t.gql(REPORT, { provider, date: today }, admin)).data.reconciliationReport).toBeNull();
      expect((await order(p.orderId)).status).toBe('PAYING');
      // Leave no unpaid-but-collected payment behind for the later "all matched" runs.
      const sync = await t.gql(`mutation($id: ID!) { syncPayment(paymentId: $id) { status } }`, { id: p.session.payment.id }, admin);
      expect(sync.data.syncPayment.status).toBe('SUCCEEDED');
    });
  });

  describe.each([
    ['wechatpay', 'WECHAT_NATIVE'],
    ['alipay', 'ALIPAY_QR'],
    ['stripe', 'STRIPE_CARD'],
    ['unionpay', 'UNIONPAY_QR'],
  ])('%s', (provider, channel) => {
    const sim = () => simulatorOf(provider);

    it("a clean day: every payment and refund matches, and the totals of both sides agree", async () => {
      const a = await paidOrder(channel);
      await paidOrder(channel);
      await refund(a.orderId, 3000);
      const r = await reconcile(provider);
      expect(r.discrepancies.filter((d) => d.state === 'open')).toEqual([]);
      expect(r.matchedCount).toBeGreaterThanOrEqual(3);
      expect(r.totalsMatch).toBe(true);
      expect(r.providerTotalAmount).toBe(r.localTotalAmount);
      expect(r.providerRefundAmount).toBeGreaterThanOrEqual(3000);
      expect(r).toMatchObject({ provider, date: today, lastRunBy: 'admin:root', openCount: 0 });
    });

    it('a payment collected at the provider whose callback never came: MISSING_LOCALLY, repaired through a provider query, the order PAID', async () => {
      const p = await startPaying(channel);
      payAtProvider(channel, p.session, false);
      expect((await order(p.orderId)).status).toBe('PAYING');
      const r = await reconcile(provider);
      expect(about(r, p.paymentNo)).toMatchObject({
        kind: 'MISSING_LOCALLY',
        state: 'repaired',
        localStatus: 'PENDING',
        providerAmount: p.amount,
        resolvedBy: 'reconciliation',
        note: expect.stringContaining('confirmed by a provider query and applied'),
      });
      const o = await order(p.orderId);
      expect(o.status).toBe('PAID');
      expect(o.history.at(-1)).toMatchObject({ to: 'PAID', actor: 'reconciliation' });
      expect(r.totalsMatch).toBe(true);
      expect(r.openCount).toBe(0);
    });

    it('a line the provider never had, for an unpaid payment here: MISSING_LOCALLY, not confirmed by the provider query, stays open and changes nothing', async () => {
      const p = await startPaying(channel);
      sim().injectBillDiscrepancy({ kind: 'extra_payment', paymentNo: p.paymentNo, amount: p.amount });
      const r = await reconcile(provider);
      expect(about(r, p.paymentNo)).toMatchObject({ kind: 'MISSING_LOCALLY', state: 'open', localStatus: 'PENDING', note: expect.stringContaining('does not confirm') });
      expect(r.totalsMatch).toBe(false);
      const o = await order(p.orderId);
      expect(o.status).toBe('PAYING');
      expect(o.payments[0].status).toBe('PENDING');
    });

    it('a line for a number unknown here: MISSING_LOCALLY, open', async () => {
      sim().injectBillDiscrepancy({ kind: 'extra_payment', paymentNo: `PX${provider}${Date.now()}`, amount: 4200 });
      const r = await reconcile(provider);
      expect(r.discrepancies.find((d) => d.paymentNo?.startsWith(`PX${provider}`))).toMatchObject({
        kind: 'MISSING_LOCALLY',
        state: 'open',
        localAmount: null,
        providerAmount: 4200,
        note: expect.stringContaining('no payment with this number here'),
      });
    });

    it('a paid payment left out of the bill: MISSING_AT_PROVIDER; once the bill has it again, a re-run settles it', async () => {
      const p = await paidOrder(channel);
      sim().injectBillDiscrepancy({ kind: 'drop_row', paymentNo: p.paymentNo });
      const r = await reconcile(provider);
      expect(about(r, p.paymentNo)).toMatchObject({ kind: 'MISSING_AT_PROVIDER', state: 'open', localAmount: p.amount, providerAmount: null });
      sim().clearBillFaults();
      const again = await reconcile(provider);
      expect(again.runs).toBe(r.runs + 1);
      expect(about(again, p.paymentNo)).toMatchObject({ state: 'repaired', note: 'no longer found when the day was reconciled again' });
    });

    it('a different amount in the bill: AMOUNT_MISMATCH with both amounts, open', async () => {
      const p = await paidOrder(channel);
      sim().injectBillDiscrepancy({ kind: 'amount', paymentNo: p.paymentNo, amount: p.amount - 1 });
      const r = await reconcile(provider);
      expect(about(r, p.paymentNo)).toMatchObject({ kind: 'AMOUNT_MISMATCH', state: 'open', localAmount: p.amount, providerAmount: p.amount - 1 });
      expect(r.totalsMatch).toBe(false);
    });

    if (provider === 'wechatpay' || provider === 'stripe') {
      it('a refund the bill says failed: STATUS_MISMATCH, open', async () => {
        const p = await paidOrder(channel);
        const refundNo = await refund(p.orderId, 1000);
        sim().injectBillDiscrepancy({ kind: 'status', paymentNo: p.paymentNo, refundNo });
        const r = await reconcile(provider);
        expect(about(r, p.paymentNo, refundNo)).toMatchObject({ kind: 'STATUS_MISMATCH', state: 'open', localStatus: 'SUCCEEDED' });
      });
    } else {
      it('its bills list completed transactions only (no status column): a status fault is refused', () => {
        expect(() => sim().injectBillDiscrepancy({ kind: 'status', paymentNo: 'P1' })).toThrow(/status/);
      });
    }
  });

  it('paid at the provider after the order was cancelled here: confirmed by a query, applied, and refunded automatically', async () => {
    // An Alipay QR nobody scanned cannot be closed at Alipay: cancelling closes it here only, and it stays payable.
    const p = await startPaying('ALIPAY_QR');
    const cancelled = await t.gql(`mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id: p.orderId }, alice);
    expect(cancelled.data.cancelOrder.status).toBe('CANCELLED');
    payAtProvider('ALIPAY_QR', p.session, false);

    const r = await reconcile('alipay');
    expect(about(r, p.paymentNo)).toMatchObject({
      kind: 'MISSING_LOCALLY',
      state: 'repaired',
      localStatus: 'CLOSED',
      note: expect.stringContaining('refunded automatically'),
    });
    const o = await order(p.orderId);
    expect(o.status).toBe('CANCELLED');
    expect(o.payments[0].status).toBe('SUCCEEDED');
    expect(o.refunds).toEqual([expect.objectContaining({ status: 'SUCCEEDED', reason: 'paid after close' })]);
    // The day was read again after the repair: the automatic refund is in the bill and matches.
    expect(about(r, p.paymentNo, o.refunds[0].refundNo)).toBeUndefined();
    expect(r.totalsMatch).toBe(true);
  });

  describe('admins', () => {
    it('an admin accepts an open discrepancy with a note; a re-run keeps it accepted', async () => {
      const p = await paidOrder('WECHAT_NATIVE');
      wechat.injectBillDiscrepancy({ kind: 'status', paymentNo: p.paymentNo });
      const r = await reconcile('wechatpay');
      const d = about(r, p.paymentNo)!;
      expect(d).toMatchObject({ kind: 'STATUS_MISMATCH', state: 'open', localStatus: 'SUCCEEDED', providerStatus: 'REVOKED' });

      const ACCEPT = `mutation($id: ID!, $note: String!) { acceptDiscrepancy(id: $id, note: $note) { ${DISCREPANCY_FIELDS} } }`;
      expect(codeOf(await t.gql(ACCEPT, { id: d.id, note: '   ' }, admin))).toBe('BAD_USER_INPUT');
      const accepted = await t.gql(ACCEPT, { id: d.id, note: 'revoked by WeChat support ticket 123; refunded offline' }, admin);
      expect(accepted.data.acceptDiscrepancy).toMatchObject({ state: 'accepted', note: 'revoked by WeChat support ticket 123; refunded offline', resolvedBy: 'admin:root' });
      expect(codeOf(await t.gql(ACCEPT, { id: d.id, note: 'again' }, admin))).toBe('INVALID_TRANSITION');

      const again = await reconcile('wechatpay');
      expect(about(again, p.paymentNo)).toMatchObject({ kind: 'STATUS_MISMATCH', state: 'accepted', note: 'revoked by WeChat support ticket 123; refunded offline' });

      const list = await t.gql(
        `query { discrepancies(provider: "wechatpay", date: "${today}", state: "accepted", kind: STATUS_MISMATCH, first: 1) {
          edges { cursor node { id state } } pageInfo { hasNextPage endCursor } } }`,
        {},
        admin,
      );
      expect(list.data.discrepancies.edges.map((e: any) => e.node)).toEqual([{ id: d.id, state: 'accepted' }]);
      const open = await t.gql(`query { discrepancies(state: "open", first: 1) { edges { node { state } } pageInfo { hasNextPage endCursor } } }`, {}, admin);
      expect(open.data.discrepancies.edges.every((e: any) => e.node.state === 'open')).toBe(true);
      expect(open.data.discrepancies.pageInfo.hasNextPage).toBe(true);
      const next = await t.gql(
        `query($after: String) { discrepancies(state: "open", first: 1, after: $after) { edges { node { id } } } }`,
        { after: open.data.discrepancies.pageInfo.endCursor },
        admin,
      );
      expect(next.data.discrepancies.edges.length).toBeGreaterThan(0);
    });

    it('everything here is for admins only (FORBIDDEN), and bad input is BAD_USER_INPUT', async () => {
      expect(codeOf(await t.gql(RECONCILE, { provider: 'wechatpay', date: today }, alice))).toBe('FORBIDDEN');
      expect(codeOf(await t.gql(REPORT, { provider: 'wechatpay', date: today }, alice))).toBe('FORBIDDEN');
      expect(codeOf(await t.gql(`query { discrepancies { edges { cursor } } }`, {}, alice))).toBe('FORBIDDEN');
      expect(codeOf(await t.gql(`mutation { acceptDiscrepancy(id: "x", note: "n") { id } }`, {}, alice))).toBe('FORBIDDEN');
      expect(codeOf(await t.gql(RECONCILE, { provider: 'wechatpay', date: today }))).toBe('UNAUTHENTICATED');
      expect(codeOf(await t.gql(RECONCILE, { provider: 'paypal', date: today }, admin))).toBe('BAD_USER_INPUT');
      expect(codeOf(await t.gql(RECONCILE, { provider: 'wechatpay', date: '2026-02-30' }, admin))).toBe('BAD_USER_INPUT');
      expect(codeOf(await t.gql(RECONCILE, { provider: 'wechatpay', date: '2999-01-01' }, admin))).toBe('BAD_USER_INPUT');
    });

    it('many instances: a day claimed by another run is skipped by the schedule and waited for by a manual run', async () => {
      const svc = t.app.services.reconciliation;
      const first = await reconcile('wechatpay');
      const lease = (until: Date | null) =>
        t.app.orm.em.fork().nativeUpdate(ReconciliationReport, { provider: 'wechatpay', date: today }, { leaseUntil: until });
      await lease(new Date(Date.now() + 60_000));
      expect(await svc.reconcile('wechatpay', today, { actor: 'schedule', notRunSince: new Date(0) })).toBeNull();
      const manual = svc.reconcile('wechatpay', today, { actor: 'admin:other' });
      await new Promise((r) => setTimeout(r, 500));
      await lease(null);
      // It waited for the other run and answers that run's report instead of running the day a second time.
      expect((await manual)!.runs).toBe(first.runs);

      // The daily run skips a day reconciled since its scheduled time, and runs one that was not.
      expect(await svc.reconcile('wechatpay', today, { actor: 'schedule', notRunSince: new Date(Date.now() - 3600_000) })).toBeNull();
      const scheduled = await svc.reconcile('wechatpay', today, { actor: 'schedule', notRunSince: new Date(Date.now() + 1000) });
      expect(scheduled).toMatchObject({ runs: first.runs + 1, lastRunBy: 'schedule' });
      expect(scheduled!.leaseUntil).toBeNull();
    });

    it('a day without transactions is an empty, matching report', async () => {
      const r = await reconcile('wechatpay', '2020-01-01');
      expect(r).toMatchObject({ matchedCount: 0, providerRowCount: 0, providerTotalAmount: 0, localTotalAmount: 0, totalsMatch: true, discrepancies: [] });
    });
  });
});

describe('the daily run (RECONCILE_DAILY_AT)', () => {
  it('reconciles yesterday for every provider once its time has passed (here: at start, the time being 00:00)', async () => {
    const t = await startTestApp('sqlite', { RECONCILE_DAILY_AT: '00:00' });
    try {
      const admin = t.token('root', 'admin');
      const yesterday = previousDate(chinaDate());
      for (const provider of ['wechatpay', 'alipay', 'unionpay', 'stripe']) {
        const report = await eventually(
          async () => (await t.gql(REPORT, { provider, date: yesterday }, admin)).data.reconciliationReport,
          (r) => r !== null && r.runs === 1,
        );
        expect(report).toMatchObject({ provider, date: yesterday, lastRunBy: 'schedule', totalsMatch: true, discrepancies: [] });
      }
    } finally {
      await t.close();
    }
  });
});
