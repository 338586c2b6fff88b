import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomInt, sign as nodeSign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { UnionPaySimulator } from '../../src/simulators/unionpay';
import type { TestApp } from '../helpers/app';
import { appFixture } from '../helpers/lifecycle';
import { TEST_REDIS_URL } from '../helpers/services';

/**
 * UnionPay back notifications (`POST /notify/unionpay`, ACP 5.1.0 `signMethod=01`) against the real server: every
 * rejected-callback case of the WeChat issue adapted to UnionPay, plus independent peers. The simulator makes its
 * certificates with node-forge; the certificates here are made by the openssl CLI, and the signatures on the
 * openssl-signed notifications by `openssl dgst` over the spec's string (sorted `k=v&`, SHA-256 hex, SHA256withRSA),
 * so neither the simulator's PKI nor the service's own signing code vouches for them.
 */

const PAY = `mutation($input: PayOrderInput!) { payOrder(input: $input) {
  payment { id paymentNo channel status amount currency } qrCodeUrl redirectUrl } }`;
const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' };
/** The owner field UnionPay's production signing certificates carry in their CN. */
const UNIONPAY_OWNER = '中国银联股份有限公司';

type Fields = Record<string, string>;

// ---- openssl: certificates and signatures made outside the service and the simulator ---------------------------------

const dir = mkdtempSync(join(tmpdir(), 'unionpay-e2e-'));
const openssl = (args: string[], input?: string | Buffer) => execFileSync('openssl', args, { cwd: dir, input, stdio: ['pipe', 'pipe', 'pipe'] });
const serial = () => String(randomInt(1, 2 ** 47));
const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n';
const SIGNER_EXT = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n';

/** A self-signed CA `<name>.pem` / `<name>.key`. */
function opensslRoot(name: string, subj: string): void {
  openssl(['req', '-x509', '-utf8', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '3650', '-subj', subj,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

/** `<name>.pem` / `<name>.key` issued by `<issuer>.pem` / `<issuer>.key`. */
function opensslIssue(name: string, subj: string, issuer: string, ca: boolean): void {
  openssl(['req', '-new', '-utf8', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj]);
  writeFileSync(join(dir, `${name}.ext`), ca ? CA_EXT : SIGNER_EXT);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-set_serial', serial(), '-days', '365',
    '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
}

/** `certId`: the certificate's serial number in decimal, as openssl prints it (hex). */
function opensslCertId(name: string): string {
  const hex = openssl(['x509', '-in', `${name}.pem`, '-noout', '-serial']).toString().trim().split('=')[1]!;
  return BigInt(`0x${hex}`).toString(10);
}

/** The spec's signature, by openssl: sorted `k=v&` of all fields but `signature`, SHA-256 lowercase hex, SHA256withRSA. */
function opensslSign(fields: Fields, key: string): Fields {
  const withoutBlank = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== ''));
  const content = Object.keys(withoutBlank)
    .filter((k) => k !== 'signature')
    .sort()
    .map((k) => `${k}=${withoutBlank[k]}`)
    .join('&');
  const hex = createHash('sha256').update(content, 'utf8').digest('hex');
  return { ...withoutBlank, signature: openssl(['dgst', '-sha256', '-sign', `${key}.key`], Buffer.from(hex, 'utf8')).toString('base64') };
}

/** A signer identity made by openssl: its certificate goes in `signPubKeyCert`, its serial in `certId`. */
function opensslSigner(name: string): { name: string; certPem: string; certId: string } {
  return { name, certPem: readFileSync(join(dir, `${name}.pem`), 'utf8'), certId: opensslCertId(name) };
}

function signWith(signer: ReturnType<typeof opensslSigner>, fields: Fields): Fields {
  return opensslSign({ ...fields, signPubKeyCert: signer.certPem, certId: signer.certId }, signer.name);
}

const cn = (owner: string) => `041@Z20260101@${owner}@00000001`;
const form = (fields: Fields) => new URLSearchParams(fields).toString();
const digits = (n: number) => Array.from({ length: n }, () => randomInt(10)).join('');
/** `YYYYMMDDhhmmss` China time. */
const acpTime = (d = new Date()) => new Date(d.getTime() + 8 * 3600_000).toISOString().slice(0, 19).replace(/\D/g, '');

const setups: Array<[string, 'sqlite' | 'postgresql', Record<string, string>]> = [['SQLite', 'sqlite', {}]];
if (inject('postgres')) setups.push(['PostgreSQL', 'postgresql', inject('redis') ? { REDIS_URL: TEST_REDIS_URL } : {}]);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(setups)('UnionPay notifications on %s (POST /notify/unionpay)', (_name, db, env) => {
  const fx = appFixture(db, { env: { SIMULATOR_TIME_SCALE: '1000', ...env }, priceAmount: 12800, stock: 1000 });
  const { subscribe } = fx;
  let t: TestApp;
  let sim: UnionPaySimulator;
  let admin: string;
  let alice: string;
  /** openssl-made signers: under the simulator's middle CA (trusted) with UnionPay's CN or a merchant's; an impostor chain. */
  let trusted: ReturnType<typeof opensslSigner>;
  let notUnionPay: ReturnType<typeof opensslSigner>;
  let impostor: ReturnType<typeof opensslSigner>;

  beforeAll(async () => {
    ({ t, admin, alice } = fx);
    sim = t.app.providers.simulator.unionpay!;

    // The configured middle CA (the one the service trusts) issues through openssl; the impostor has its own chain.
    const tag = db;
    writeFileSync(join(dir, `${tag}-simmiddle.pem`), sim.pki.middle.certPem);
    writeFileSync(join(dir, `${tag}-simmiddle.key`), sim.pki.middle.keyPem);
    opensslIssue(`${tag}-trusted`, `/C=CN/O=China UnionPay/OU=UnionPay/CN=${cn(UNIONPAY_OWNER)}`, `${tag}-simmiddle`, false);
    opensslIssue(`${tag}-merchant`, `/C=CN/O=China UnionPay/OU=Merchants/CN=${cn('777290058110048')}`, `${tag}-simmiddle`, false);
    opensslRoot(`${tag}-fakeroot`, '/C=CN/O=China UnionPay/CN=China UnionPay Root CA');
    opensslIssue(`${tag}-fakemiddle`, '/C=CN/O=China UnionPay/CN=China UnionPay OCA1', `${tag}-fakeroot`, true);
    opensslIssue(`${tag}-impostor`, `/C=CN/O=China UnionPay/OU=UnionPay/CN=${cn(UNIONPAY_OWNER)}`, `${tag}-fakemiddle`, false);
    trusted = opensslSigner(`${tag}-trusted`);
    notUnionPay = opensslSigner(`${tag}-merchant`);
    impostor = opensslSigner(`${tag}-impostor`);
    // openssl agrees the trusted signer chains to the configured root, and the impostor does not.
    writeFileSync(join(dir, `${tag}-simroot.pem`), sim.rootCertPem);
    expect(openssl(['verify', '-CAfile', `${tag}-simroot.pem`, '-untrusted', `${tag}-simmiddle.pem`, `${tag}-trusted.pem`]).toString()).toContain('OK');
    expect(() => openssl(['verify', '-CAfile', `${tag}-simroot.pem`, '-untrusted', `${tag}-simmiddle.pem`, `${tag}-impostor.pem`])).toThrow();
  });
  /** An order paid with UNIONPAY_QR through payOrder: PENDING payment, the QR code applied for at the simulator. */
  const payingOrder = async () => {
    const order = (await t.gql(`mutation { createOrder(input: { items: [{ sku: "TEA", quantity: 1 }] }) { id orderNo totalAmount } }`, {}, alice)).data
      .createOrder as { id: string; orderNo: string; totalAmount: number };
    const res = await t.gql(PAY, { input: { orderId: order.id, channel: 'UNIONPAY_QR', clientIp: '203.0.113.9' } }, alice);
    expect(res.errors).toBeUndefined();
    const session = res.data.payOrder;
    expect(session.payment).toMatchObject({ status: 'PENDING', amount: order.totalAmount });
    const tx = sim.store.findConsume({ orderId: session.payment.paymentNo })!;
    expect(tx).toBeTruthy();
    return { order, paymentNo: session.payment.paymentNo as string, qrCode: session.qrCodeUrl as string, merId: tx.merId, txnTime: tx.txnTime };
  };
  type Paying = Awaited<ReturnType<typeof payingOrder>>;

  const orderState = async (id: string) =>
    (
      await t.gql(
        `query($id: ID!) { order(id: $id) { status paidAmount refundedAmount payments { paymentNo status providerTransactionId }
          refunds { refundNo amount status } history { from to actor } } }`,
        { id },
        admin,
      )
    ).data.order;
  const notifications = async (): Promise<any[]> => {
    const rows: any[] = [];
    let after: string | null = null;
    for (;;) {
      const res: any = await t.gql(
        `query($after: String) { paymentNotifications(first: 100, after: $after) {
          edges { node { provider notificationId paymentNo outcome flagged reason } } pageInfo { hasNextPage endCursor } } }`,
        { after },
        admin,
      );
      expect(res.errors).toBeUndefined();
      rows.push(...res.data.paymentNotifications.edges.map((e: any) => e.node));
      if (!res.data.paymentNotifications.pageInfo.hasNextPage) return rows;
      after = res.data.paymentNotifications.pageInfo.endCursor;
    }
  };
  const deliver = (rawBody: string) => fetch(`${t.url}/notify/unionpay`, { method: 'POST', headers: FORM_HEADERS, body: rawBody });

  /** The consume (payment) result UnionPay notifies for `p`, unsigned; `over` wins. */
  const consume = (p: Paying, over: Fields = {}): Fields => {
    const now = new Date();
    return {
      version: '5.1.0',
      encoding: 'UTF-8',
      signMethod: '01',
      accessType: '0',
      merId: p.merId,
      txnType: '01',
      txnSubType: '07',
      bizType: '000000',
      channelType: '08',
      orderId: p.paymentNo,
      txnTime: p.txnTime,
      txnAmt: String(p.order.totalAmount),
      currencyCode: '156',
      queryId: `${acpTime(now)}${digits(7)}`,
      traceNo: digits(6),
      traceTime: acpTime(now).slice(4),
      settleAmt: String(p.order.totalAmount),
      settleCurrencyCode: '156',
      settleDate: acpTime(now).slice(4, 8),
      accNo: '6216********0018',
      payCardType: '01',
      respCode: '00',
      respMsg: '成功[0000000]',
      ...over,
    };
  };
  const expectRefused = async (res: Response, what: string) => {
    expect(res.status, what).toBe(400);
    expect(await res.text(), what).not.toBe('ok');
  };
  const expectOk = async (res: Response) => {
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  };

  describe('callbacks for an order paid with UNIONPAY_QR (payment PENDING)', () => {
    let p: Paying;

    beforeAll(async () => {
      p = await payingOrder();
    });

    it('forged, tampered, untrusted-signer and malformed notifications are refused with 400, change nothing and are kept as rejected', async () => {
      const n = sim.buildNotification(consume(p));
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const forged = { ...n.fields, signature: nodeSign('sha256', Buffer.from('0'.repeat(64)), other.privateKey).toString('base64') };
      const cases: Array<[string, string]> = [
        ['forged signature', form(forged)],
        ['tampered amount, not re-signed', form({ ...n.fields, txnAmt: '1', settleAmt: '1' })],
        ['tampered respCode, not re-signed', form({ ...n.fields, respCode: '01' })],
        ['signature swapped in from another notification', form({ ...n.fields, signature: sim.buildNotification(consume(p)).fields.signature! })],
        ['openssl impostor chain with UnionPay\'s CN', form(signWith(impostor, consume(p)))],
        ['openssl certificate under the trusted middle CA, but not UnionPay\'s', form(signWith(notUnionPay, consume(p)))],
        ['trusted certificate, signature by another key', form({ ...signWith(trusted, consume(p)), signature: forged.signature })],
        ['no signPubKeyCert', form(Object.fromEntries(Object.entries(n.fields).filter(([k]) => k !== 'signPubKeyCert')))],
        ['version 5.0.0', form({ ...n.fields, version: '5.0.0' })],
        ['signMethod 11', form({ ...n.fields, signMethod: '11' })],
        ['a field given twice', `${n.rawBody}&txnAmt=1`],
        ['empty body', ''],
      ];
      for (const [what, raw] of cases) await expectRefused(await deliver(raw), what);

      const state = await orderState(p.order.id);
      expect(state.status).toBe('PAYING');
      expect(state.payments).toEqual([expect.objectContaining({ paymentNo: p.paymentNo, status: 'PENDING', providerTransactionId: null })]);
      const rejected = (await notifications()).filter((x) => x.provider === 'unionpay' && x.outcome === 'rejected');
      expect(rejected).toHaveLength(cases.length);
      expect(rejected.every((r) => !r.flagged && r.reason)).toBe(true);
      expect(rejected.map((r) => r.reason)).toEqual(
        expect.arrayContaining([
          'invalid signature',
          'signPubKeyCert is not issued by the configured UnionPay middle certificate',
          expect.stringContaining('not owned by UnionPay'),
          'no signPubKeyCert',
        ]),
      );
      // What can be told about a rejected notification is kept for admins.
      expect(rejected.filter((r) => r.paymentNo === p.paymentNo).length).toBeGreaterThanOrEqual(8);
    });

    it('verified but mismatched (amount, currency, merId, unknown order) is flagged, refused and changes nothing; openssl-signed too', async () => {
      const cases: Array<[Fields, string]> = [
        [consume(p, { txnAmt: String(p.order.totalAmount - 1), settleAmt: String(p.order.totalAmount - 1) }), 'amount'],
        // The same number of US cents is not the payment's amount (regression: a non-156 currencyCode was dropped).
        [consume(p, { currencyCode: '840', settleCurrencyCode: '840' }), 'currency'],
        [consume(p, { merId: '777290058000001' }), 'merId'],
        [consume(p, { orderId: 'P00000000000000000000000000' }), 'unknown payment'],
      ];
      const ids: string[] = [];
      for (const [fields] of cases) {
        for (const raw of [sim.buildNotification(fields).rawBody, form(signWith(trusted, { ...fields, queryId: `${fields.queryId!.slice(0, 14)}${digits(7)}` }))]) {
          const sent = Object.fromEntries(new URLSearchParams(raw));
          ids.push(`${sent.queryId}:01`);
          await expectRefused(await deliver(raw), JSON.stringify(fields));
        }
      }
      const state = await orderState(p.order.id);
      expect(state.status).toBe('PAYING');
      expect(state.payments[0].status).toBe('PENDING');
      const rows = (await notifications()).filter((x) => ids.includes(x.notificationId));
      expect(rows).toHaveLength(ids.length);
      expect(rows.every((r) => r.outcome === 'flagged' && r.flagged === true)).toBe(true);
      for (const [, reason] of cases) expect(rows.filter((r) => r.reason.includes(reason))).toHaveLength(2);
    });

    it('10 concurrent copies of one success: all answered 200, one transition into PAID, one event, one applied row', async () => {
      const sub = subscribe(p.order.id);
      await sub.until((s) => s.events.length >= 1);
      const n = sim.buildNotification(consume(p));
      const replies = await Promise.all(Array.from({ length: 10 }, () => deliver(n.rawBody)));
      expect(replies.map((r) => r.status)).toEqual(Array(10).fill(200));
      expect(await Promise.all(replies.map((r) => r.text()))).toEqual(Array(10).fill('ok'));

      await sub.until((s) => s.events.some((e) => e.paymentStatusChanged.orderStatus === 'PAID'));
      await new Promise((r) => setTimeout(r, 300));
      const paid = sub.events.filter((e) => e.paymentStatusChanged.orderStatus === 'PAID');
      expect(paid).toHaveLength(1);
      expect(paid[0].paymentStatusChanged).toMatchObject({ paymentNo: p.paymentNo, paymentStatus: 'SUCCEEDED', channel: 'UNIONPAY_QR', paidAmount: p.order.totalAmount });

      const state = await orderState(p.order.id);
      expect(state).toMatchObject({ status: 'PAID', paidAmount: p.order.totalAmount });
      expect(state.payments[0]).toMatchObject({ status: 'SUCCEEDED', providerTransactionId: n.fields.queryId });
      expect(state.history.filter((h: any) => h.to === 'PAID')).toEqual([expect.objectContaining({ from: 'PAYING', actor: 'provider:unionpay' })]);
      const rows = (await notifications()).filter((x) => x.notificationId === `${n.fields.queryId}:01`);
      expect(rows.filter((r) => r.outcome === 'applied')).toHaveLength(1);
      expect(rows.filter((r) => r.outcome === 'duplicate')).toHaveLength(9);
    });

    it('after PAID: a failed consume result, another success and an unknown refund never move the order', async () => {
      await expectOk(await deliver(sim.buildNotification(consume(p, { respCode: '01', respMsg: '交易失败', settleAmt: '' })).rawBody));
      await expectOk(await deliver(form(signWith(trusted, consume(p)))));
      const refund = consume(p, { txnType: '04', txnSubType: '00', orderId: 'R00000000000000000000000000', origQryId: `${acpTime()}${digits(7)}`, txnAmt: '100' });
      await expectRefused(await deliver(sim.buildNotification(refund).rawBody), 'unknown refund');
      const state = await orderState(p.order.id);
      expect(state).toMatchObject({ status: 'PAID', paidAmount: p.order.totalAmount, refunds: [] });
      expect(state.payments).toEqual([expect.objectContaining({ status: 'SUCCEEDED' })]);
      expect(state.history.map((h: any) => h.to)).toEqual(['PENDING_PAYMENT', 'PAYING', 'PAID']);
      expect((await notifications()).filter((x) => x.reason?.includes('unknown refund R00000000000000000000000000'))).toHaveLength(1);
    });
  });

  // Regression: a failed attempt is only the last attempt (the QR code stays payable); the next, successful attempt
  // of that FAILED payment goes into the still-live order instead of being refunded as "paid after close".
  it('a failed attempt the service has queried (payment FAILED), then paid on the same QR code: the success goes into the order, nothing is refunded', async () => {
    const p = await payingOrder();
    const pay = (outcome: string) =>
      fetch(`${t.url}/simulator/unionpay/pay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ qrCode: p.qrCode, outcome }) });
    expect((await pay('FAIL')).status).toBe(200);
    const paymentId = (await t.gql(`query($id: ID!) { order(id: $id) { payments { id } } }`, { id: p.order.id }, admin)).data.order.payments[0].id;
    const synced = await t.gql(`mutation($id: ID!) { syncPayment(paymentId: $id) { status } }`, { id: paymentId }, admin);
    expect(synced.errors).toBeUndefined();
    expect((await pay('SUCCESS')).status).toBe(200);
    await until(async () => (await orderState(p.order.id)).payments[0].status === 'SUCCEEDED');
    await new Promise((r) => setTimeout(r, 300));
    const state = await orderState(p.order.id);
    expect(state.refunds).toEqual([]);
    expect(state).toMatchObject({ status: 'PAID', paidAmount: p.order.totalAmount });
  });

  it('independent peer: a success signed by openssl with an openssl-issued certificate under the configured chain is applied', async () => {
    const p = await payingOrder();
    const fields = signWith(trusted, consume(p));
    await expectOk(await deliver(form(fields)));
    const state = await orderState(p.order.id);
    expect(state).toMatchObject({ status: 'PAID', paidAmount: p.order.totalAmount });
    expect(state.payments[0]).toMatchObject({ status: 'SUCCEEDED', providerTransactionId: fields.queryId });
    const rows = (await notifications()).filter((x) => x.notificationId === `${fields.queryId}:01`);
    expect(rows).toEqual([expect.objectContaining({ outcome: 'applied', paymentNo: p.paymentNo, flagged: false })]);
  });

  it('the simulator\'s own notification (customer pays at /simulator/unionpay/pay) verifies with openssl against the configured chain', async () => {
    const p = await payingOrder();
    const paid = await fetch(`${t.url}/simulator/unionpay/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ qrCode: p.qrCode, outcome: 'SUCCESS' }),
    });
    expect(paid.status).toBe(200);
    const { queryId } = (await paid.json()) as { queryId: string };
    await until(async () => (await orderState(p.order.id)).status === 'PAID');
    // Rebuild what the simulator sent (same fields, same deterministic PKCS#1 v1.5 signature) and check it by openssl.
    const tx = sim.store.findConsume({ orderId: p.paymentNo })!;
    expect(tx.queryId).toBe(queryId);
    const n = sim.buildNotification(consume(p, { queryId, traceNo: tx.traceNo!, traceTime: tx.traceTime!, settleDate: tx.settleDate! }));
    const signer = `${db}-simsigner`;
    writeFileSync(join(dir, `${signer}.pem`), n.fields.signPubKeyCert!);
    writeFileSync(join(dir, `${signer}.pub`), openssl(['x509', '-in', `${signer}.pem`, '-pubkey', '-noout']));
    const content = Object.keys(n.fields)
      .filter((k) => k !== 'signature')
      .sort()
      .map((k) => `${k}=${n.fields[k]}`)
      .join('&');
    writeFileSync(join(dir, `${signer}.sig`), Buffer.from(n.fields.signature!, 'base64'));
    const hex = createHash('sha256').update(content, 'utf8').digest('hex');
    expect(openssl(['dgst', '-sha256', '-verify', `${signer}.pub`, '-signature', `${signer}.sig`], Buffer.from(hex, 'utf8')).toString()).toContain('Verified OK');
    expect(openssl(['verify', '-CAfile', `${db}-simroot.pem`, '-untrusted', `${db}-simmiddle.pem`, `${signer}.pem`]).toString()).toContain('OK');
    // Its re-delivery is a duplicate.
    await expectOk(await deliver(n.rawBody));
    const rows = (await notifications()).filter((x) => x.notificationId === `${queryId}:01`);
    expect(rows.map((r) => r.outcome).sort()).toEqual(['applied', 'duplicate']);
  });
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
