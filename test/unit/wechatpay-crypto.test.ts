import { createPublicKey, generateKeyPairSync, verify as nodeVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Aes, Decorator, Formatter, Rsa } from 'wechatpay-axios-plugin';
import { PaymentChannel } from '../../src/payments/channels';
import { WechatPayProvider } from '../../src/payments/providers/wechatpay/provider';
import type { WechatPayConfig } from '../../src/payments/providers/wechatpay/config';
import {
  aesGcmDecrypt,
  aesGcmEncrypt,
  buildAuthorization,
  buildJsapiPayMessage,
  buildRequestMessage,
  buildResponseMessage,
  formatRfc3339China,
  parseAuthorization,
  rsaSign,
  rsaVerify,
  timestampWithinWindow,
} from '../../src/payments/providers/wechatpay/crypto';
import { generateMerchantCredentials, generatePublicKeyId } from '../../src/simulators/wechatpay/credentials';
import { buildNotification, signNotification } from '../../src/simulators/wechatpay/notifications';

/** Written only from the spec text: five lines, each followed by `\n` (empty body line for GET). */
function specRequestMessage(method: string, url: string, ts: string, nonce: string, body: string): string {
  return `${method}\n${url}\n${ts}\n${nonce}\n${body}\n`;
}

function keyPair() {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

const merchant = generateMerchantCredentials('1900000109', 'wxd678efh567hg6787');
const platform = { ...keyPair(), id: generatePublicKeyId() };
const otherPlatform = keyPair();
const now = () => Math.floor(Date.now() / 1000);

describe('AES-256-GCM (published vector: wechatpay-axios-plugin tests/lib/aes.test.js)', () => {
  const key = '0123456789abcdef0123456789abcdef';
  const iv = '0123456789abcdef';

  it('encrypts hello/world to the published ciphertext', () => {
    expect(aesGcmEncrypt('hello', key, iv, 'world')).toBe('APoZlYpivU3HjbAiB4CvW1rAFr8J');
  });

  it('decrypts the published ciphertext', () => {
    expect(aesGcmDecrypt('APoZlYpivU3HjbAiB4CvW1rAFr8J', key, iv, 'world')).toBe('hello');
  });

  it('agrees with the plugin in both directions', () => {
    const ct = aesGcmEncrypt('{"a":"支付"}', key, iv, 'transaction');
    expect(Aes.AesGcm.decrypt(ct, key, iv, 'transaction')).toBe('{"a":"支付"}');
    expect(aesGcmDecrypt(Aes.AesGcm.encrypt('x', key, iv, 'y'), key, iv, 'y')).toBe('x');
  });

  it('refuses a wrong AAD, a flipped bit, a wrong key or a short ciphertext', () => {
    const ct = Buffer.from('APoZlYpivU3HjbAiB4CvW1rAFr8J', 'base64');
    expect(() => aesGcmDecrypt(ct.toString('base64'), key, iv, 'World')).toThrow();
    const flipped = Buffer.from(ct);
    flipped[0] ^= 1;
    expect(() => aesGcmDecrypt(flipped.toString('base64'), key, iv, 'world')).toThrow();
    expect(() => aesGcmDecrypt(ct.toString('base64'), 'fedcba9876543210fedcba9876543210', iv, 'world')).toThrow();
    expect(() => aesGcmDecrypt('AAAA', key, iv, 'world')).toThrow();
  });

  it('insists on a 32-byte key', () => {
    expect(() => aesGcmEncrypt('x', '0123456789abcdef', iv)).toThrow(RangeError);
  });
});

describe('request signature message', () => {
  it('matches the spec format and the plugin Formatter, GET with an empty body line', () => {
    const cases: Array<[string, string, string]> = [
      ['POST', '/v3/pay/transactions/native', '{"mchid":"1900000109"}'],
      ['GET', '/v3/pay/transactions/out-trade-no/P123456?mchid=1900000109', ''],
    ];
    for (const [method, url, body] of cases) {
      const mine = buildRequestMessage(method, url, 1554208460, '593BEC0C930BF1AFEB40B4A08C8FB242', body);
      expect(mine).toBe(specRequestMessage(method, url, '1554208460', '593BEC0C930BF1AFEB40B4A08C8FB242', body));
      expect(mine).toBe(Formatter.request(method, url, '1554208460', '593BEC0C930BF1AFEB40B4A08C8FB242', body));
    }
    expect(buildRequestMessage('GET', '/v3/x', 1, 'n')).toBe('GET\n/v3/x\n1\nn\n\n');
  });

  it('the plugin signs the full URL path (base URL prefix and query included) with the merchant key', () => {
    const signer = Decorator.requestInterceptor() as (c: Record<string, unknown>) => { headers: { get(n: string): string } };
    const base = 'http://127.0.0.1:4000/simulator/wechatpay';
    const data = { mchid: merchant.mchid, description: '测试' };
    const cases = [
      { method: 'post', url: 'v3/pay/transactions/native', data, target: '/simulator/wechatpay/v3/pay/transactions/native', body: JSON.stringify(data) },
      { method: 'get', url: 'v3/pay/transactions/out-trade-no/P-1|*?mchid=1900000109', data: undefined, target: '/simulator/wechatpay/v3/pay/transactions/out-trade-no/P-1|*?mchid=1900000109', body: '' },
    ];
    for (const c of cases) {
      const out = signer({
        method: c.method,
        url: c.url,
        baseURL: base,
        data: c.data,
        headers: {},
        mchid: merchant.mchid,
        serial: merchant.merchantSerial,
        privateKey: Rsa.from(merchant.merchantPrivateKey, Rsa.KEY_TYPE_PRIVATE),
      });
      const auth = parseAuthorization(out.headers.get('Authorization'));
      expect(auth).not.toBeNull();
      expect(auth!.mchid).toBe(merchant.mchid);
      expect(auth!.serial_no).toBe(merchant.merchantSerial);
      const message = specRequestMessage(c.method.toUpperCase(), c.target, auth!.timestamp, auth!.nonce_str, c.body);
      expect(nodeVerify('sha256', Buffer.from(message), createPublicKey(merchant.merchantPublicKey), Buffer.from(auth!.signature, 'base64'))).toBe(true);
    }
  });

  it('Authorization header round-trips and malformed ones are refused', () => {
    const f = { mchid: '1900000109', nonce_str: 'abc', timestamp: '1554208460', serial_no: '408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB', signature: 'c2ln+/=' };
    expect(parseAuthorization(buildAuthorization(f))).toEqual(f);
    // field order is free (the plugin puts serial_no second)
    expect(parseAuthorization(Formatter.authorization(f.mchid, f.nonce_str, f.signature, f.timestamp, f.serial_no))).toEqual(f);
    expect(parseAuthorization(undefined)).toBeNull();
    expect(parseAuthorization('Bearer x')).toBeNull();
    expect(parseAuthorization('WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="a"')).toBeNull();
    expect(parseAuthorization('WECHATPAY2-SHA256-RSA2048 garbage')).toBeNull();
  });
});

describe('response / callback signature verification', () => {
  const ts = String(now());
  const body = '{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}';
  const signature = rsaSign(buildResponseMessage(ts, 'nonce1', body), platform.privateKey);

  it('message is TIMESTAMP\\nNONCE\\nBODY\\n over the raw bytes', () => {
    expect(buildResponseMessage('1', 'n', 'b').toString()).toBe('1\nn\nb\n');
    expect(buildResponseMessage('1', 'n', '').toString()).toBe(Formatter.response('1', 'n', ''));
    const raw = Buffer.from([0x7b, 0xe4, 0xb8, 0xad, 0x7d]);
    expect(buildResponseMessage('1', 'n', raw).subarray(4, 9)).toEqual(raw);
  });

  it('accepts the right key and refuses tampering, another key and garbage', () => {
    expect(rsaVerify(buildResponseMessage(ts, 'nonce1', body), signature, platform.publicKey)).toBe(true);
    expect(Rsa.verify(Formatter.response(ts, 'nonce1', body), signature, createPublicKey(platform.publicKey))).toBe(true);
    expect(rsaVerify(buildResponseMessage(ts, 'nonce1', body + ' '), signature, platform.publicKey)).toBe(false);
    expect(rsaVerify(buildResponseMessage(ts, 'nonce2', body), signature, platform.publicKey)).toBe(false);
    expect(rsaVerify(buildResponseMessage(ts, 'nonce1', body), signature, otherPlatform.publicKey)).toBe(false);
    expect(rsaVerify(buildResponseMessage(ts, 'nonce1', body), 'WECHATPAY/SIGNTEST/abc', platform.publicKey)).toBe(false);
    expect(rsaVerify(buildResponseMessage(ts, 'nonce1', body), '', platform.publicKey)).toBe(false);
  });

  it("the plugin's verifier accepts a signed answer and refuses unsigned, unknown-serial and badly signed ones", () => {
    const verifier = Decorator.responseVerifier({ [platform.id]: createPublicKey(platform.publicKey) }) as (
      this: object,
      data: string,
      headers: Record<string, string>,
      status: number,
    ) => unknown;
    const ctx = { url: 'v3/pay/transactions/native', validateStatus: () => true };
    const headers = { 'Wechatpay-Timestamp': ts, 'Wechatpay-Nonce': 'nonce1', 'Wechatpay-Signature': signature, 'Wechatpay-Serial': platform.id };
    expect(verifier.call(ctx, body, headers, 200)).toBe(body);
    const code = (x: unknown) => (x as { code?: string }).code;
    expect(code(verifier.call(ctx, body, {}, 200))).toBe('EV3_RES_HEADERS_INCOMPLATE');
    expect(code(verifier.call(ctx, body, { ...headers, 'Wechatpay-Serial': 'PUB_KEY_ID_0' }, 200))).toBe('EV3_RES_HEADER_PLATFORM_SERIAL');
    expect(code(verifier.call(ctx, `${body} `, headers, 200))).toBe('EV3_RES_HEADER_SIGNATURE_DIGEST');
    expect(code(verifier.call(ctx, body, { ...headers, 'Wechatpay-Timestamp': String(now() - 301) }, 200))).toBe('EV3_RES_HEADER_TIMESTAMP_OFFSET');
    // The quirk the adapter works around: with the default validateStatus a 4xx is not verified at all.
    const defaultCtx = { url: 'v3/x', validateStatus: (s: number) => s >= 200 && s < 300 };
    expect(verifier.call(defaultCtx, '{"code":"ORDER_PAID"}', {}, 400)).toBe('{"code":"ORDER_PAID"}');
  });

  it('timestamp window is ±300 s and numeric', () => {
    const t = Date.now();
    expect(timestampWithinWindow(String(Math.floor(t / 1000) - 300), t)).toBe(true);
    expect(timestampWithinWindow(String(Math.floor(t / 1000) + 300), t)).toBe(true);
    expect(timestampWithinWindow(String(Math.floor(t / 1000) - 301), t)).toBe(false);
    expect(timestampWithinWindow(String(Math.floor(t / 1000) + 301), t)).toBe(false);
    expect(timestampWithinWindow('abc', t)).toBe(false);
    expect(timestampWithinWindow('', t)).toBe(false);
  });
});

describe('JSAPI paySign', () => {
  it('is SHA256withRSA over appId\\ntimeStamp\\nnonceStr\\npackage\\n, verifiable with the merchant public key', () => {
    const appId = 'wxd678efh567hg6787';
    const pkg = 'prepay_id=wx201410272009395522657a690389285100';
    const message = buildJsapiPayMessage(appId, '1414561699', '5K8264ILTKCH16CQ2502SI8ZNMTM67VS', pkg);
    expect(message).toBe(`${appId}\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\n${pkg}\n`);
    const paySign = rsaSign(message, merchant.merchantPrivateKey);
    const fromSpec = `${appId}\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\n${pkg}\n`;
    expect(nodeVerify('sha256', Buffer.from(fromSpec), createPublicKey(merchant.merchantPublicKey), Buffer.from(paySign, 'base64'))).toBe(true);
    expect(Rsa.sign(fromSpec, Rsa.from(merchant.merchantPrivateKey, Rsa.KEY_TYPE_PRIVATE))).toBe(paySign);
  });
});

describe('RFC 3339 in China time', () => {
  it('formats with a +08:00 offset and whole seconds', () => {
    expect(formatRfc3339China(new Date('2026-11-26T11:30:00.789Z'))).toBe('2026-11-26T19:30:00+08:00');
    expect(formatRfc3339China(new Date('2026-12-31T20:00:05Z'))).toBe('2027-01-01T04:00:05+08:00');
    expect(new Date(formatRfc3339China(new Date('2026-02-28T16:00:00Z'))).toISOString()).toBe('2026-02-28T16:00:00.000Z');
    expect(() => formatRfc3339China(new Date('x'))).toThrow(RangeError);
  });
});

describe('WechatPayProvider.parseNotification (no I/O)', () => {
  const config: WechatPayConfig = {
    mchid: merchant.mchid,
    appid: merchant.appid,
    merchantSerial: merchant.merchantSerial,
    merchantPrivateKey: merchant.merchantPrivateKey,
    apiV3Key: merchant.apiV3Key,
    platformPublicKey: platform.publicKey,
    platformPublicKeyId: platform.id,
    baseUrl: 'http://127.0.0.1:9/unused',
  };
  const provider = new WechatPayProvider(config);
  const signer = { privateKey: platform.privateKey, publicKeyId: platform.id };
  const transaction = {
    mchid: merchant.mchid,
    appid: merchant.appid,
    out_trade_no: 'P20261126000001',
    transaction_id: '4200000000000000000000000001',
    trade_type: 'NATIVE',
    trade_state: 'SUCCESS',
    trade_state_desc: '支付成功',
    success_time: '2026-11-26T19:30:00+08:00',
    payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
    amount: { total: 8800, payer_total: 8800, currency: 'CNY', payer_currency: 'CNY' },
  };
  const built = buildNotification({ eventType: 'TRANSACTION.SUCCESS', resource: transaction, apiV3Key: merchant.apiV3Key });
  const parse = (rawBody: string | Buffer, headers: Record<string, string>) =>
    provider.parseNotification({ rawBody: Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody), headers });

  it('accepts a genuine TRANSACTION.SUCCESS and maps it', async () => {
    const r = await parse(built.rawBody, signNotification(built.rawBody, signer));
    expect(r).toMatchObject({
      ok: true,
      notificationId: built.id,
      event: {
        type: 'payment',
        status: 'SUCCEEDED',
        paymentNo: 'P20261126000001',
        providerTransactionId: '4200000000000000000000000001',
        amount: 8800,
        currency: 'CNY',
        paidAt: new Date('2026-11-26T11:30:00Z'),
      },
      payload: transaction,
    });
    expect(r.ok && r.mismatch).toBeFalsy();
  });

  it('refuses missing headers, SIGNTEST probes, unknown serials, stale timestamps, bad signatures', async () => {
    const good = signNotification(built.rawBody, signer);
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ ...good, 'wechatpay-signature': '' }, /missing/],
      [Object.fromEntries(Object.entries(good).filter(([k]) => k !== 'wechatpay-nonce')), /missing/],
      [signNotification(built.rawBody, signer, { signature: 'WECHATPAY/SIGNTEST/Y2VydGlmaWNhdGU=' }), /SIGNTEST/],
      [signNotification(built.rawBody, signer, { serial: 'PUB_KEY_ID_0000' }), /unknown serial/],
      [signNotification(built.rawBody, signer, { timestamp: now() - 301 }), /timestamp/],
      // 310, not 301: a second may pass between signing and checking (the exact edge is tested above).
      [signNotification(built.rawBody, signer, { timestamp: now() + 310 }), /timestamp/],
      [signNotification(built.rawBody, { privateKey: otherPlatform.privateKey, publicKeyId: platform.id }), /invalid signature/],
    ];
    for (const [headers, reason] of cases) {
      const r = await parse(built.rawBody, headers);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.reason).toMatch(reason);
    }
  });

  it('verifies the raw bytes: a re-serialized or tampered body is refused', async () => {
    const headers = signNotification(built.rawBody, signer);
    const reserialized = JSON.stringify(JSON.parse(built.rawBody), null, 1);
    expect((await parse(reserialized, headers)).ok).toBe(false);
    expect((await parse(built.rawBody.replace('支付成功', '支付成功 '), headers)).ok).toBe(false);
  });

  it('refuses a signed body that is not JSON, and a resource that does not decrypt', async () => {
    const notJson = 'not json';
    const r1 = await parse(notJson, signNotification(notJson, signer));
    expect(!r1.ok && r1.reason).toMatch(/not JSON/);

    const body = JSON.parse(built.rawBody);
    const ct = Buffer.from(body.resource.ciphertext, 'base64');
    ct[3] ^= 0x20;
    body.resource.ciphertext = ct.toString('base64');
    const tampered = JSON.stringify(body);
    const r2 = await parse(tampered, signNotification(tampered, signer));
    expect(r2).toMatchObject({ ok: false, notificationId: built.id });
    expect(!r2.ok && r2.reason).toMatch(/decryption/);

    const otherKey = buildNotification({ eventType: 'TRANSACTION.SUCCESS', resource: transaction, apiV3Key: 'Z'.repeat(32) });
    const r3 = await parse(otherKey.rawBody, signNotification(otherKey.rawBody, signer));
    expect(!r3.ok && r3.reason).toMatch(/decryption/);
  });

  it('flags another merchant or app id as a mismatch', async () => {
    for (const [resource, what] of [
      [{ ...transaction, mchid: '1999999999' }, /mchid/],
      [{ ...transaction, appid: 'wx0000000000000000' }, /appid/],
    ] as const) {
      const n = buildNotification({ eventType: 'TRANSACTION.SUCCESS', resource, apiV3Key: merchant.apiV3Key });
      const r = await parse(n.rawBody, signNotification(n.rawBody, signer));
      expect(r.ok).toBe(true);
      expect(r.ok && r.mismatch).toMatch(what);
    }
  });

  it('maps refund events and ignores others', async () => {
    const refund = {
      mchid: merchant.mchid,
      out_trade_no: 'P20261126000001',
      transaction_id: '4200000000000000000000000001',
      out_refund_no: 'R20261126000001',
      refund_id: '50000000382019052709732678859',
      refund_status: 'SUCCESS',
      success_time: '2026-11-26T19:40:00+08:00',
      user_received_account: '支付用户零钱',
      amount: { total: 8800, refund: 1000, payer_total: 8800, payer_refund: 1000 },
    };
    const expected = { SUCCESS: 'SUCCEEDED', ABNORMAL: 'FAILED', CLOSED: 'FAILED' } as const;
    for (const [suffix, status] of Object.entries(expected)) {
      const n = buildNotification({ eventType: `REFUND.${suffix}`, resource: { ...refund, refund_status: suffix }, apiV3Key: merchant.apiV3Key });
      const r = await parse(n.rawBody, signNotification(n.rawBody, signer));
      expect(r).toMatchObject({
        ok: true,
        event: { type: 'refund', refundNo: 'R20261126000001', paymentNo: 'P20261126000001', status, amount: 1000, providerRefundId: refund.refund_id },
      });
      expect(JSON.parse(n.rawBody).resource).toMatchObject({ original_type: 'refund', associated_data: 'refund' });
    }
    const other = buildNotification({ eventType: 'MARKETING.COUPON', resource: { mchid: merchant.mchid }, apiV3Key: merchant.apiV3Key });
    const r = await parse(other.rawBody, signNotification(other.rawBody, signer));
    expect(r).toMatchObject({ ok: true, event: { type: 'ignored' } });
  });

  it('refuses a verified resource that lacks what its event must carry', async () => {
    const { amount: _amount, ...noAmount } = transaction;
    const n = buildNotification({ eventType: 'TRANSACTION.SUCCESS', resource: noAmount, apiV3Key: merchant.apiV3Key });
    const r = await parse(n.rawBody, signNotification(n.rawBody, signer));
    expect(r).toMatchObject({ ok: false, notificationId: n.id });
    expect(!r.ok && r.reason).toMatch(/malformed/);
  });

  it('replies 204, or 400 with {code: FAIL, message}', () => {
    expect(provider.notificationReply(true)).toEqual({ status: 204 });
    const no = provider.notificationReply(false, 'invalid signature');
    expect(no).toMatchObject({ status: 400, contentType: 'application/json' });
    expect(JSON.parse(no.body!)).toEqual({ code: 'FAIL', message: 'invalid signature' });
  });

  it('has the WeChat channels and refuses to build without a 32-byte APIv3 key', () => {
    expect(provider.name).toBe('wechatpay');
    expect(provider.channels).toEqual([PaymentChannel.WECHAT_NATIVE, PaymentChannel.WECHAT_JSAPI, PaymentChannel.WECHAT_H5]);
    expect(() => new WechatPayProvider({ ...config, apiV3Key: 'short' })).toThrow(/32 bytes/);
  });
});
