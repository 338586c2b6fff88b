import { createPrivateKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { AlipaySdk } from 'alipay-sdk';
import iconv from 'iconv-lite';
import { afterEach, describe, expect, it } from 'vitest';
import { PaymentChannel } from '../../src/payments/channels';
import { AlipayProvider, type AlipayConfig } from '../../src/payments/providers/alipay';
import {
  decodeForm,
  encodeForm,
  formatChinaDateTime,
  notifySignContent,
  parseChinaDateTime,
  privateKeyType,
  requestSignContent,
  rsaVerify,
  signedResponseText,
  signNotifyParams,
  toPublicKeyPem,
  verifyNotifyParams,
} from '../../src/payments/providers/alipay/crypto';
import type { CreatePaymentInput, ParsedNotification } from '../../src/payments/providers/provider';
import { fromMajorString, toMajorString } from '../../src/shared/money';

/**
 * A real TRADE_SUCCESS notification signed by Alipay, with the Alipay public key that verifies it: alipay-sdk
 * (alipay/alipay-sdk-nodejs-all) `test/alipay.test.ts`, "verify sign should delete sign_type"; fund_bill_list written
 * as the JSON text a form post carries. The same as the project's published `alipay-notify-vector.json`.
 */
const vector = {
  alipayPublicKey:
    'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqObrdC7hrgAVM98tK0nv3hSQRGGKT4lBsQjHiGjeYZjOPIPHR5knm2jnnz/YGIXIofVHkA/tAlBAd5DrY7YpvI4tP5EONLtZKC2ghBMx7McI2wRD0xiqzxOQr1FuhZGJ8/AUokBzJrzY+aGX2xcOrxFYRlFilvVLTXg4LWjR1tdPkO6+i7wQZAIVMClPkwVRZEbaERRHlKqTzv2gGv5rDU8gRoe1LeaN+6BlbTqHWkQcNCUNrA8C6l17XAXGKDsm/9TFWwO8EPHHHCaQdjtV5/FdcWIt+L8SR1ss7EXTjYDFtxcKVv9rEoY1lX8T4mX+GbXfZHraG5NCF1+XioL5JwIDAQAB',
  params: {
    gmt_create: '2019-08-15 15:56:22',
    charset: 'utf-8',
    seller_email: 'z97-yuquerevenue@service.aliyun.com',
    subject: '语雀空间 500人规模',
    sign: 'QfTb8tqE1BMhS5qAnXtvsF3/jBkEvu9q9en0pdbBUDDjvKycZhQb7h8GDs4FKfi049PynaNuatxSgLb/nLWZpXyyh0LEWdK2S6Ri7nPwrVgOs08zugLO20vOQz44y3ti2Ncm8/wZts1Fr2gZ7pShnVX3d1B50hbsXnObT1r/U8ONNQjWXd0HIul4TG+Q3fm3svmSvFEy0WnzuhcyHPX5Gm4ELNctL6Qd5YniGJFNcc7kopHYtI/XD9YCKCH6Ct02rzUs9i11C9CsadtZn+WhxF26Dqt9sGEFajkJ8cxUTLi8+VCpLHsgPE8P0y095uQcDdK0YjCh4x7wVSov+lrmOQ==',
    buyer_id: '2088102534368455',
    invoice_amount: '0.10',
    notify_id: '2019081500222155624068450559358070',
    fund_bill_list: '[{"amount":"0.10","fundChannel":"ALIPAYACCOUNT"}]',
    notify_type: 'trade_status_sync',
    trade_status: 'TRADE_SUCCESS',
    receipt_amount: '0.10',
    buyer_pay_amount: '0.10',
    sign_type: 'RSA2',
    app_id: '2019073166072302',
    seller_id: '2088531891668739',
    gmt_payment: '2019-08-15 15:56:24',
    notify_time: '2019-08-15 15:56:25',
    version: '1.0',
    out_trade_no: '20190815155618536-564-57',
    total_amount: '0.10',
    trade_no: '2019081522001468450512505578',
    auth_app_id: '2019073166072302',
    buyer_logon_id: 'xud***@126.com',
    point_amount: '0.00',
  } as Record<string, string>,
};

function keyPair() {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

/** Alipay's side (notifications, answers); the adapter only ever holds its public half. */
const alipay = keyPair();
/** The merchant application's key pair. */
const app = keyPair();
const APP_ID = '2021004100000001';
const SELLER_ID = '2088102100000001';

/** Written only from the spec text: drop sign and sign_type, sort, join `k=v&`, SHA256withRSA, base64. */
function specSign(params: Record<string, string>, privateKeyPem: string): Record<string, string> {
  const content = Object.keys(params)
    .filter((k) => k !== 'sign' && k !== 'sign_type')
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
  return { ...params, sign_type: 'RSA2', sign: nodeSign('sha256', Buffer.from(content, 'utf8'), privateKeyPem).toString('base64') };
}

/** An independent form encoder (WHATWG URLSearchParams, UTF-8). */
const urlEncoded = (params: Record<string, string>) => Buffer.from(new URLSearchParams(params).toString());

function adapter(over: Partial<AlipayConfig> = {}): AlipayProvider {
  return new AlipayProvider({
    appId: APP_ID,
    privateKey: app.privateKey,
    alipayPublicKey: alipay.publicKey,
    gateway: 'https://openapi.alipay.com/gateway.do',
    sellerId: SELLER_ID,
    ...over,
  });
}

function tradeParams(over: Record<string, string> = {}): Record<string, string> {
  return {
    notify_time: '2026-11-26 19:30:05',
    notify_type: 'trade_status_sync',
    notify_id: '2026112600222193005123456789012345',
    app_id: APP_ID,
    auth_app_id: APP_ID,
    seller_id: SELLER_ID,
    charset: 'utf-8',
    version: '1.0',
    trade_no: '2026112622001412345678901234',
    out_trade_no: 'P202611261930000000000001',
    subject: '绿茶 × 2',
    total_amount: '88.00',
    buyer_id: '2088102177777777',
    gmt_create: '2026-11-26 19:29:58',
    gmt_payment: '2026-11-26 19:30:04',
    trade_status: 'TRADE_SUCCESS',
    ...over,
  };
}

const ok = (r: ParsedNotification) => {
  if (!r.ok) throw new Error(`expected ok, got ${r.reason}`);
  return r;
};

describe('the published notification vector (alipay-sdk test/alipay.test.ts)', () => {
  const vectorAdapter = (over: Partial<AlipayConfig> = {}) =>
    adapter({ appId: vector.params.app_id, alipayPublicKey: vector.alipayPublicKey, sellerId: undefined, ...over });

  it('verifies only with sign and sign_type left out', () => {
    const key = toPublicKeyPem(vector.alipayPublicKey);
    expect(verifyNotifyParams(vector.params, key)).toEqual({ ok: true });
    const withSignType = Object.keys(vector.params)
      .filter((k) => k !== 'sign')
      .sort()
      .map((k) => `${k}=${vector.params[k]}`)
      .join('&');
    expect(rsaVerify(withSignType, vector.params.sign, key)).toBe(false);
  });

  it('parses through parseNotification, posted form-encoded by two different encoders', async () => {
    for (const rawBody of [urlEncoded(vector.params), Buffer.from(encodeForm(vector.params))]) {
      const parsed = ok(await vectorAdapter().parseNotification({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, rawBody }));
      expect(parsed.notificationId).toBe('2019081500222155624068450559358070');
      expect(parsed.mismatch).toBeUndefined();
      expect(parsed.event).toEqual({
        type: 'payment',
        status: 'SUCCEEDED',
        paymentNo: '20190815155618536-564-57',
        providerTransactionId: '2019081522001468450512505578',
        amount: 10,
        currency: 'CNY',
        paidAt: new Date('2019-08-15T07:56:24Z'),
      });
      expect(parsed.payload).toEqual(vector.params);
    }
  });

  it('fails with one character changed, in any parameter or in the signature', async () => {
    const changed = [
      { ...vector.params, total_amount: '0.11' },
      { ...vector.params, subject: '语雀空间 501人规模' },
      { ...vector.params, out_trade_no: '20190815155618536-564-58' },
      { ...vector.params, sign: vector.params.sign.replace(/^Q/, 'R') },
      { ...vector.params, extra: '' },
    ];
    for (const params of changed) {
      const parsed = await vectorAdapter().parseNotification({ headers: {}, rawBody: urlEncoded(params) });
      expect(parsed).toEqual({ ok: false, reason: 'invalid signature' });
    }
    const { sign: _sign, ...unsigned } = vector.params;
    expect(await vectorAdapter().parseNotification({ headers: {}, rawBody: urlEncoded(unsigned) })).toEqual({ ok: false, reason: 'missing sign' });
  });

  it('flags a seller id that is not the configured one', async () => {
    const parsed = ok(await vectorAdapter({ sellerId: '2088000000000000' }).parseNotification({ headers: {}, rawBody: urlEncoded(vector.params) }));
    expect(parsed.mismatch).toMatch(/seller_id 2088531891668739/);
    expect(ok(await vectorAdapter({ sellerId: '2088531891668739' }).parseNotification({ headers: {}, rawBody: urlEncoded(vector.params) })).mismatch).toBeUndefined();
  });
});

describe('signatures against an independent peer (alipay-sdk)', () => {
  /** The SDK configured as a merchant that trusts `alipay`: its verifiers check our Alipay-side signatures. */
  const merchantSdk = new AlipaySdk({ appId: APP_ID, privateKey: app.privateKey, keyType: 'PKCS8', alipayPublicKey: alipay.publicKey });

  it('notifications we sign verify with the SDK (checkNotifySignV2, rsaCheck); the SDK-signed vector verifies with us', () => {
    const signed = signNotifyParams(tradeParams(), alipay.privateKey);
    expect(merchantSdk.checkNotifySignV2(signed)).toBe(true);
    expect(merchantSdk.rsaCheck(notifySignContent(signed), signed.sign, 'RSA2')).toBe(true);
    expect(merchantSdk.checkNotifySignV2({ ...signed, total_amount: '88.01' })).toBe(false);
    expect(signNotifyParams(tradeParams(), alipay.privateKey)).toEqual(specSign(tradeParams(), alipay.privateKey));
  });

  it('requests the SDK signs (sdkExecute, pageExecute) verify with the request rule, and only with it', () => {
    const query = merchantSdk.sdkExecute('alipay.trade.query', { bizContent: { out_trade_no: 'P1 & 2' }, notify_url: 'https://m.example/n?a=1' });
    const params = Object.fromEntries(new URLSearchParams(query));
    expect(params).toMatchObject({ app_id: APP_ID, method: 'alipay.trade.query', sign_type: 'RSA2', charset: 'utf-8', version: '1.0' });
    expect(rsaVerify(requestSignContent(params), params.sign, app.publicKey)).toBe(true);
    // sign_type is part of a request signature (unlike a notification's).
    expect(rsaVerify(notifySignContent(params), params.sign, app.publicKey)).toBe(false);
    expect(rsaVerify(requestSignContent({ ...params, biz_content: '{"out_trade_no":"P1 & 3"}' }), params.sign, app.publicKey)).toBe(false);

    const url = new URL(merchantSdk.pageExecute('alipay.trade.page.pay', 'GET', { bizContent: { out_trade_no: 'P2', total_amount: '0.01' }, return_url: 'https://m.example/r' }));
    const pageParams = Object.fromEntries(url.searchParams);
    expect(pageParams.alipay_sdk).toBeDefined();
    expect(rsaVerify(requestSignContent(pageParams), pageParams.sign, app.publicKey)).toBe(true);
  });

  it('gateway answers we sign pass the SDK response check, on their raw text only', () => {
    const body = { code: '10000', msg: 'Success', out_trade_no: 'P1', qr_code: 'https://qr.alipay.com/bax01234' };
    const text = signedResponseText('alipay_trade_precreate_response', body, alipay.privateKey);
    expect(text).toContain('"qr_code":"https:\\/\\/qr.alipay.com\\/bax01234"');
    const { sign } = JSON.parse(text) as { sign: string };
    expect(() => merchantSdk.checkResponseSign(text, 'alipay_trade_precreate_response', sign, 't')).not.toThrow();
    const reserialized = JSON.stringify({ alipay_trade_precreate_response: body, sign });
    expect(() => merchantSdk.checkResponseSign(reserialized, 'alipay_trade_precreate_response', sign, 't')).toThrow(/验签失败/);
    const other = keyPair();
    const forged = signedResponseText('alipay_trade_precreate_response', body, other.privateKey);
    expect(() => merchantSdk.checkResponseSign(forged, 'alipay_trade_precreate_response', JSON.parse(forged).sign, 't')).toThrow(/验签失败/);
  });
});

describe('notification events', () => {
  const parse = (params: Record<string, string>, over: Partial<AlipayConfig> = {}) =>
    adapter(over).parseNotification({ headers: {}, rawBody: urlEncoded(specSign(params, alipay.privateKey)) });

  it('TRADE_SUCCESS without refund_fee is a payment; with refund_fee it confirms the refund out_biz_no, never a payment', async () => {
    expect(ok(await parse(tradeParams())).event).toMatchObject({ type: 'payment', status: 'SUCCEEDED', amount: 8800, paidAt: new Date('2026-11-26T11:30:04Z') });
    const partial = ok(await parse(tradeParams({ refund_fee: '30.00', gmt_refund: '2026-11-27 10:00:00.123', out_biz_no: 'R1' })));
    expect(partial.event).toEqual({ type: 'refund', status: 'SUCCEEDED', refundNo: 'R1', paymentNo: 'P202611261930000000000001' });
  });

  it('TRADE_CLOSED with refund_fee is a refund (the full one); without, the payment closed', async () => {
    const full = ok(await parse(tradeParams({ trade_status: 'TRADE_CLOSED', refund_fee: '88.00', out_biz_no: 'R2', gmt_close: '2026-11-27 10:00:00' })));
    expect(full.event).toMatchObject({ type: 'refund', status: 'SUCCEEDED', refundNo: 'R2' });
    const closed = ok(await parse(tradeParams({ trade_status: 'TRADE_CLOSED', gmt_close: '2026-11-26 21:29:58' })));
    expect(closed.event).toMatchObject({ type: 'payment', status: 'CLOSED', amount: 8800 });
  });

  it('TRADE_FINISHED confirms the payment; WAIT_BUYER_PAY is ignored', async () => {
    expect(ok(await parse(tradeParams({ trade_status: 'TRADE_FINISHED' }))).event).toMatchObject({ type: 'payment', status: 'SUCCEEDED' });
    expect(ok(await parse(tradeParams({ trade_status: 'WAIT_BUYER_PAY' }))).event).toMatchObject({ type: 'ignored', reason: 'trade_status WAIT_BUYER_PAY' });
  });

  it('flags another app id; refuses sign_type RSA, a parameter given twice and an unknown charset', async () => {
    expect(ok(await parse(tradeParams({ app_id: '2021009999999999' }))).mismatch).toMatch(/app_id 2021009999999999/);
    const signed = specSign(tradeParams(), alipay.privateKey);
    const p = adapter();
    expect(await p.parseNotification({ headers: {}, rawBody: urlEncoded({ ...signed, sign_type: 'RSA' }) })).toEqual({ ok: false, reason: 'unsupported sign_type RSA' });
    expect(await p.parseNotification({ headers: {}, rawBody: Buffer.from(`${urlEncoded(signed)}&total_amount=0.01`) })).toMatchObject({ ok: false, reason: /given twice/ });
    expect(await p.parseNotification({ headers: {}, rawBody: urlEncoded({ ...signed, charset: 'klingon' }) })).toMatchObject({ ok: false, reason: /unsupported charset/ });
  });

  it('decodes exactly once: a literal %41 in a value stays %41', async () => {
    const parsed = ok(await parse(tradeParams({ subject: '100%25 A%41 a+b' })));
    expect((parsed.payload as Record<string, string>).subject).toBe('100%25 A%41 a+b');
  });

  it('GBK bodies decode in the charset the body names', async () => {
    const params = specSign(tradeParams({ charset: 'GBK', subject: '绿茶 × 2' }), alipay.privateKey);
    const rawBody = Buffer.from(encodeForm(params, 'GBK'));
    expect(rawBody.toString()).toContain(`subject=${[...iconv.encode('绿茶', 'gbk')].map((b) => `%${b.toString(16).toUpperCase()}`).join('')}`);
    const parsed = ok(await adapter().parseNotification({ headers: {}, rawBody }));
    expect((parsed.payload as Record<string, string>).subject).toBe('绿茶 × 2');
  });

  it('replies exactly `success` (7 characters) or a refusal', () => {
    const reply = adapter().notificationReply(true);
    expect(reply).toEqual({ status: 200, contentType: 'text/plain', body: 'success' });
    expect(reply.body).toHaveLength(7);
    expect(adapter().notificationReply(false)).toEqual({ status: 400, contentType: 'text/plain', body: 'fail' });
  });
});

describe('amounts: yuan strings at the edge, fen inside', () => {
  const cases: Array<[number, string, string]> = [
    [1, '0.01', '0.01'],
    [10, '0.10', '0.1'],
    [1999, '19.99', '19.99'],
    [10_000_000_000, '100000000.00', '100000000.00'],
  ];

  it('converts both ways', () => {
    for (const [fen, yuan, loose] of cases) {
      expect(toMajorString(fen)).toBe(yuan);
      expect(fromMajorString(loose)).toBe(fen);
    }
  });

  it('sends total_amount as yuan and reads notified amounts as fen', async () => {
    const p = adapter();
    for (const [fen, yuan, loose] of cases) {
      const created = await p.createPayment(pageInput({ amount: fen }));
      const biz = JSON.parse(new URL(created.redirectUrl!).searchParams.get('biz_content')!);
      expect(biz.total_amount).toBe(yuan);
      const parsed = ok(await p.parseNotification({ headers: {}, rawBody: urlEncoded(specSign(tradeParams({ total_amount: loose }), alipay.privateKey)) }));
      expect(parsed.event).toMatchObject({ type: 'payment', amount: fen });
    }
  });
});

function pageInput(over: Partial<CreatePaymentInput> = {}): CreatePaymentInput {
  return {
    channel: PaymentChannel.ALIPAY_PAGE,
    paymentNo: 'P202611261930000000000001',
    amount: 8800,
    currency: 'CNY',
    description: 'Order O-1',
    expiresAt: new Date('2026-11-26T11:45:00Z'),
    notifyUrl: 'https://shop.example/notify/alipay',
    returnUrl: 'https://shop.example/checkout/O-1',
    ...over,
  };
}

describe('China time, whatever process.env.TZ says', () => {
  const originalTz = process.env.TZ;
  afterEach(() => {
    if (originalTz === undefined) delete process.env.TZ;
    else process.env.TZ = originalTz;
  });
  const offsets: Record<string, number> = { UTC: 0, 'America/Los_Angeles': 480, 'Asia/Shanghai': -480, 'Pacific/Kiritimati': -840 };
  const zones = Object.keys(offsets);
  const china = new Intl.DateTimeFormat('sv-SE', {
    timeZone: 'Asia/Shanghai',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });

  it('formats and parses yyyy-MM-dd HH:mm:ss as UTC+8', () => {
    for (const tz of zones) {
      process.env.TZ = tz;
      const d = new Date('2026-11-26T16:30:05.123Z');
      expect(new Date('2026-01-01T00:00:00Z').getTimezoneOffset()).toBe(offsets[tz]); // the host zone really changed
      expect(formatChinaDateTime(d)).toBe('2026-11-27 00:30:05');
      expect(formatChinaDateTime(d, true)).toBe('2026-11-27 00:30:05.123');
      expect(formatChinaDateTime(d)).toBe(china.format(d));
      expect(parseChinaDateTime('2026-11-27 00:30:05')).toEqual(new Date('2026-11-26T16:30:05Z'));
      expect(parseChinaDateTime('2026-11-27 00:30:05.123')).toEqual(d);
    }
    expect(parseChinaDateTime('2026-02-30 00:00:00')).toBeUndefined();
    expect(parseChinaDateTime('2026-11-27T00:30:05')).toBeUndefined();
  });

  it('stamps requests and time_expire in China time from a host in UTC or Los Angeles', async () => {
    for (const tz of ['UTC', 'America/Los_Angeles']) {
      process.env.TZ = tz;
      const before = Date.now();
      const created = await adapter().createPayment(pageInput());
      const url = new URL(created.redirectUrl!);
      const stamped = parseChinaDateTime(url.searchParams.get('timestamp')!)!;
      expect(stamped.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      expect(stamped.getTime()).toBeLessThanOrEqual(Date.now());
      expect(url.searchParams.get('timestamp')).toBe(china.format(stamped));
      expect(JSON.parse(url.searchParams.get('biz_content')!).time_expire).toBe('2026-11-26 19:45:00');
    }
  });
});

describe('keys', () => {
  it('tells PKCS#1 from PKCS#8 by the PEM header, and bare base64 bodies by parsing', () => {
    const pkcs1 = createPrivateKey(app.privateKey).export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(privateKeyType(app.privateKey)).toBe('PKCS8');
    expect(privateKeyType(pkcs1)).toBe('PKCS1');
    const bare = (pem: string) => pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
    expect(privateKeyType(bare(app.privateKey))).toBe('PKCS8');
    expect(privateKeyType(bare(pkcs1))).toBe('PKCS1');
    expect(toPublicKeyPem(bare(alipay.publicKey))).toBe(alipay.publicKey.trim());
  });

  it('both encodings sign requests the simulator-side rule verifies', async () => {
    const pkcs1 = createPrivateKey(app.privateKey).export({ type: 'pkcs1', format: 'pem' }).toString();
    for (const privateKey of [app.privateKey, pkcs1]) {
      const created = await adapter({ privateKey }).createPayment(pageInput());
      const params = Object.fromEntries(new URL(created.redirectUrl!).searchParams);
      expect(rsaVerify(requestSignContent(params), params.sign, app.publicKey)).toBe(true);
    }
  });

  it('refuses unreadable, encrypted and non-RSA keys with a message saying how to fix them', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const encrypted = createPrivateKey(app.privateKey).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString();
    expect(() => privateKeyType('not a key')).toThrow(/PEM \(BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY\)/);
    expect(() => privateKeyType(encrypted)).toThrow(/encrypted/);
    expect(() => privateKeyType(ec.privateKey)).toThrow(/must be an RSA key/);
    expect(() => adapter({ alipayPublicKey: 'nope' })).toThrow(/Alipay public key cannot be read/);
    expect(() => adapter({ appId: 'app-1' })).toThrow(/ALIPAY_APP_ID/);
  });
});

describe('form codec', () => {
  it('round-trips through UTF-8 and GBK, with + and %XX as Java URLEncoder writes them', () => {
    const params = { a: 'x y+z', b: '绿茶&=%', charset: 'utf-8' };
    expect(encodeForm(params)).toBe('a=x+y%2Bz&b=%E7%BB%BF%E8%8C%B6%26%3D%25&charset=utf-8');
    expect(decodeForm(Buffer.from(encodeForm(params)))).toEqual({ params, charset: 'utf-8' });
    const gbk = { ...params, charset: 'GBK' };
    expect(decodeForm(Buffer.from(encodeForm(gbk, 'GBK')))).toEqual({ params: gbk, charset: 'GBK' });
  });
});
