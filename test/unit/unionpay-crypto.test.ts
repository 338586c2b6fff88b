import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaymentChannel } from '../../src/payments/channels';
import { UnionPayProvider, type UnionPayConfig } from '../../src/payments/providers/unionpay';
import {
  assertTrustAnchors,
  buildSignString,
  certIdOf,
  checkSignerCertificate,
  cnOwner,
  formatAcpResponse,
  formatAcpTime,
  parseAcpResponse,
  parseAcpTime,
  parseForm,
  signFields,
  toPrivateKey,
  traceTimeToDate,
  verifySignature,
  verifyUnionPayMessage,
} from '../../src/payments/providers/unionpay/crypto';
import { FRONT_FORM_CSP, FRONT_FORM_SCRIPT } from '../../src/payments/providers/unionpay/form';
import { createUnionPayPki } from '../../src/simulators/unionpay/pki';

/**
 * Certificates here come from the openssl CLI (the simulator makes its own with node-forge, the adapter checks them
 * with node:crypto), and signatures are made and checked by openssl from the spec text alone:
 * sort the fields but `signature`, join `k=v` with `&`, SHA-256 → lowercase hex, SHA256withRSA over the hex, base64.
 */
let dir: string;

function openssl(args: string[], input?: string | Buffer): Buffer {
  return execFileSync('openssl', args, { cwd: dir, input, stdio: ['pipe', 'pipe', 'pipe'] });
}

const UNIONPAY_CN = '041@Z20250101@中国银联股份有限公司@00000001';

const CA_CONFIG = `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
preserve = yes
email_in_dn = no
string_mask = utf8only
[ policy_any ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_leaf ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

/** A self-signed certificate `<name>.pem` with key `<name>.key`. */
function selfSigned(name: string, subj: string, ca: boolean): void {
  const ext = ca
    ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']
    : ['-addext', 'basicConstraints=CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature'];
  openssl(['req', '-x509', '-utf8', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '3650', '-subj', subj, ...ext]);
}

/** `<name>.pem` issued by `<issuer>.pem`/`.key` through `openssl ca` (so validity dates can lie in the past). */
function issue(name: string, subj: string, issuer: string, ext: 'v3_ca' | 'v3_leaf', dates?: { start: string; end: string }): void {
  openssl(['req', '-new', '-utf8', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj]);
  openssl([
    'ca', '-batch', '-utf8', '-notext', '-config', 'ca.cnf', '-cert', `${issuer}.pem`, '-keyfile', `${issuer}.key`,
    '-in', `${name}.csr`, '-out', `${name}.pem`, '-extensions', ext,
    ...(dates ? ['-startdate', dates.start, '-enddate', dates.end] : ['-days', '365']),
  ]);
}

const pem = (name: string) => readFileSync(join(dir, `${name}.pem`), 'utf8');
const keyPem = (name: string) => readFileSync(join(dir, `${name}.key`), 'utf8');

/** The spec's signature, computed by openssl with `<key>.key`. */
function specSign(fields: Record<string, string>, key: string): string {
  const joined = Object.keys(fields)
    .filter((k) => k !== 'signature')
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('&');
  const hex = createHash('sha256').update(joined, 'utf8').digest('hex');
  return openssl(['dgst', '-sha256', '-sign', `${key}.key`], Buffer.from(hex, 'utf8')).toString('base64');
}

/** The spec's verification by openssl against `<cert>.pem`'s public key. */
function specVerify(fields: Record<string, string>, cert: string): boolean {
  const joined = Object.keys(fields)
    .filter((k) => k !== 'signature')
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('&');
  const hex = createHash('sha256').update(joined, 'utf8').digest('hex');
  writeFileSync(join(dir, 'sig.bin'), Buffer.from(fields.signature, 'base64'));
  writeFileSync(join(dir, 'pub.pem'), openssl(['x509', '-in', `${cert}.pem`, '-pubkey', '-noout']));
  try {
    openssl(['dgst', '-sha256', '-verify', 'pub.pem', '-signature', 'sig.bin'], Buffer.from(hex, 'utf8'));
    return true;
  } catch {
    return false;
  }
}

let trust: { root: X509Certificate; middle: X509Certificate };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'unionpay-pki-'));
  writeFileSync(join(dir, 'ca.cnf'), CA_CONFIG);
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '5A0F1C3B2D4E6F01\n');
  mkdirSync(join(dir, 'newcerts'));

  selfSigned('root', '/C=CN/O=Test CFCA/CN=Test Root CA', true);
  issue('middle', '/C=CN/O=Test CFCA/CN=Test OCA1', 'root', 'v3_ca');
  issue('signer', `/C=CN/O=Test CFCA/OU=UnionPay/CN=${UNIONPAY_CN}`, 'middle', 'v3_leaf');
  issue('expired', `/C=CN/O=Test CFCA/OU=UnionPay/CN=${UNIONPAY_CN}`, 'middle', 'v3_leaf', { start: '20200101000000Z', end: '20210101000000Z' });
  issue('future', `/C=CN/O=Test CFCA/OU=UnionPay/CN=${UNIONPAY_CN}`, 'middle', 'v3_leaf', { start: '20990101000000Z', end: '20991231000000Z' });
  issue('wrongcn', '/C=CN/O=Test CFCA/OU=Merchants/CN=041@Z20250101@某某网络科技有限公司@00000001', 'middle', 'v3_leaf');
  issue('testcn', '/C=CN/O=CFCA TEST OCA1/OU=UnionPay/CN=041@Z2014-12-10@00040000:SIGN@00000002', 'middle', 'v3_leaf');
  issue('skipmiddle', `/C=CN/O=Test CFCA/OU=UnionPay/CN=${UNIONPAY_CN}`, 'root', 'v3_leaf');
  selfSigned('selfsigned', `/C=CN/O=Test CFCA/OU=UnionPay/CN=${UNIONPAY_CN}`, false);
  selfSigned('otherroot', '/C=CN/O=Other/CN=Other Root CA', true);
  issue('othermiddle', '/C=CN/O=Other/CN=Other OCA1', 'otherroot', 'v3_ca');
  issue('foreign', `/C=CN/O=Other/OU=UnionPay/CN=${UNIONPAY_CN}`, 'othermiddle', 'v3_leaf');
  issue('merchant', '/C=CN/O=Test CFCA/OU=Merchants/CN=041@Z777290058110048@777290058110048@00000001', 'middle', 'v3_leaf');
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'notca.key', '-out', 'notca.csr', '-subj', '/CN=Not a CA']);
  openssl(['x509', '-req', '-in', 'notca.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-set_serial', '68759647000', '-days', '30', '-out', 'notca.pem']);

  trust = { root: new X509Certificate(pem('root')), middle: new X509Certificate(pem('middle')) };
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('signature (signMethod=01, version 5.1.0)', () => {
  const fields = {
    version: '5.1.0',
    encoding: 'UTF-8',
    signMethod: '01',
    txnType: '01',
    txnSubType: '07',
    bizType: '000000',
    merId: '777290058110048',
    orderId: 'P2026112600001',
    txnAmt: '8800',
    respMsg: '成功[0000000]',
    backUrl: 'https://shop.example/notify/unionpay?x=1&y=2',
  };

  it('signs exactly like the spec: sorted k=v&, SHA-256 hex, SHA256withRSA over the hex, base64', () => {
    const signed = signFields(fields, toPrivateKey(keyPem('merchant')), '123');
    expect(signed.certId).toBe('123');
    expect(signed.signature).toBe(specSign({ ...fields, certId: '123' }, 'merchant'));
    expect(specVerify(signed, 'merchant')).toBe(true);
  });

  it('the sign string sorts keys, keeps raw values and empty values, and leaves out signature', () => {
    expect(buildSignString({ b: '2', a: 'x=1&y', signature: 'zzz', c: '' })).toBe('a=x=1&y&b=2&c=');
  });

  it('drops blank fields before signing, so what is signed is what is sent', () => {
    const signed = signFields({ ...fields, reqReserved: '', termId: '  ' }, toPrivateKey(keyPem('merchant')), '1');
    expect(signed).not.toHaveProperty('reqReserved');
    expect(signed).not.toHaveProperty('termId');
  });

  it('verifies a signature made by openssl, and refuses a tampered field, another key or garbage', () => {
    const msg = { ...fields, certId: '1' };
    const signed = { ...msg, signature: specSign(msg, 'signer') };
    const key = new X509Certificate(pem('signer')).publicKey;
    expect(verifySignature(signed, key)).toBe(true);
    expect(verifySignature({ ...signed, txnAmt: '8801' }, key)).toBe(false);
    expect(verifySignature({ ...signed, extra: '' }, key)).toBe(false);
    expect(verifySignature(signed, new X509Certificate(pem('foreign')).publicKey)).toBe(false);
    expect(verifySignature({ ...signed, signature: 'not base64!' }, key)).toBe(false);
    expect(verifySignature({ ...signed, signature: '' }, key)).toBe(false);
  });

  it('certId is the serial number in decimal', () => {
    expect(certIdOf(pem('notca'))).toBe('68759647000');
    const hex = openssl(['x509', '-in', 'signer.pem', '-noout', '-serial']).toString().trim().split('=')[1];
    expect(certIdOf(pem('signer'))).toBe(BigInt(`0x${hex}`).toString());
  });
});

describe('signPubKeyCert trust (chain to middle → root, validity, CN owner)', () => {
  const check = (name: string, opts: { allowTestEnvironmentSigner?: boolean } = {}) => checkSignerCertificate(pem(name), { ...trust, ...opts });

  it('accepts root → middle → UnionPay signer and reads the CN owner', () => {
    const r = check('signer');
    expect(r.ok).toBe(true);
    expect(cnOwner(new X509Certificate(pem('signer')))).toBe('中国银联股份有限公司');
  });

  it.each([
    ['selfsigned', /not issued by the configured UnionPay middle/],
    ['foreign', /not issued by the configured UnionPay middle/],
    ['skipmiddle', /not issued by the configured UnionPay middle/],
    ['expired', /expired or not yet valid/],
    ['future', /expired or not yet valid/],
    ['wrongcn', /not owned by UnionPay/],
    ['testcn', /not owned by UnionPay.*00040000:SIGN/],
  ])('refuses %s', (name, reason) => {
    const r = check(name);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(reason);
  });

  it("accepts the test environment's 00040000:SIGN only when asked to", () => {
    expect(check('testcn', { allowTestEnvironmentSigner: true }).ok).toBe(true);
    expect(check('wrongcn', { allowTestEnvironmentSigner: true }).ok).toBe(false);
  });

  it('refuses garbage and rejects a middle that is not a CA or not under the root', () => {
    expect(checkSignerCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', trust).ok).toBe(false);
    expect(() => assertTrustAnchors(trust.root, trust.middle)).not.toThrow();
    expect(() => assertTrustAnchors(trust.root, new X509Certificate(pem('notca')))).toThrow(/must be a CA/);
    expect(() => assertTrustAnchors(trust.root, new X509Certificate(pem('othermiddle')))).toThrow(/not issued by the configured root/);
    expect(() => assertTrustAnchors(trust.middle, trust.middle)).toThrow(/self-signed/);
  });

  it('a whole message: verified with its signPubKeyCert; wrong version, no cert or a tampered field refused', () => {
    const msg: Record<string, string> = { version: '5.1.0', signMethod: '01', respCode: '00', respMsg: '成功[0000000]', signPubKeyCert: pem('signer'), certId: certIdOf(pem('signer')) };
    msg.signature = specSign(msg, 'signer');
    expect(verifyUnionPayMessage(msg, trust)).toEqual({ ok: true });
    expect(verifyUnionPayMessage({ ...msg, respCode: '01' }, trust)).toEqual({ ok: false, reason: 'invalid signature' });
    expect(verifyUnionPayMessage({ ...msg, version: '5.0.0' }, trust).ok).toBe(false);
    expect(verifyUnionPayMessage({ ...msg, signMethod: '11' }, trust).ok).toBe(false);
    const { signPubKeyCert: _c, ...noCert } = msg;
    expect(verifyUnionPayMessage(noCert, trust).ok).toBe(false);
    const foreign: Record<string, string> = { ...msg, signPubKeyCert: pem('foreign') };
    foreign.signature = specSign(foreign, 'foreign');
    expect(verifyUnionPayMessage(foreign, trust)).toMatchObject({ ok: false, reason: expect.stringMatching(/middle/) });
  });

  it("the simulator's node-forge chain is standard X.509: openssl verifies it", () => {
    const pki = createUnionPayPki();
    writeFileSync(join(dir, 'sim-root.pem'), pki.root.certPem);
    writeFileSync(join(dir, 'sim-middle.pem'), pki.middle.certPem);
    writeFileSync(join(dir, 'sim-signer.pem'), pki.signer.certPem);
    const out = openssl(['verify', '-CAfile', 'sim-root.pem', '-untrusted', 'sim-middle.pem', 'sim-signer.pem']).toString();
    expect(out).toContain('sim-signer.pem: OK');
    const subject = openssl(['x509', '-in', 'sim-signer.pem', '-noout', '-subject', '-nameopt', 'utf8,sep_multiline']).toString();
    expect(subject).toContain('@中国银联股份有限公司@');
    expect(openssl(['x509', '-in', 'sim-signer.pem', '-noout', '-serial']).toString().trim().split('=')[1]).toBe(
      BigInt(pki.signer.certId).toString(16).toUpperCase().padStart(16, '0'),
    );
  });
});

describe('encodings', () => {
  it('parses answers like the SDK: nested {…} and […] values keep their & and =, a {…} body is unwrapped', () => {
    const text = 'respCode=00&reqReserved={a=1&b=2}&list=[x&y]&respMsg=成功[0000000]&empty=&qrCode=https://qr.95516.com/00010000/62';
    expect(parseAcpResponse(text)).toEqual({
      respCode: '00',
      reqReserved: '{a=1&b=2}',
      list: '[x&y]',
      respMsg: '成功[0000000]',
      empty: '',
      qrCode: 'https://qr.95516.com/00010000/62',
    });
    expect(parseAcpResponse('{respCode=00&respMsg=ok}')).toEqual({ respCode: '00', respMsg: 'ok' });
    expect(() => parseAcpResponse('respCode=00&respCode=01')).toThrow(/repeated/);
    expect(() => parseAcpResponse('=00')).toThrow(/empty key/);
  });

  it('a PEM with newlines, + and = survives format → parse', () => {
    const fields = { signPubKeyCert: pem('signer'), signature: 'ab+/cd==', respCode: '00' };
    expect(parseAcpResponse(formatAcpResponse(fields))).toEqual(fields);
  });

  it('form bodies decode once and refuse repeated fields', () => {
    expect(parseForm('a=1%2B1&b=%E6%88%90%E5%8A%9F&c=x+y')).toEqual({ a: '1+1', b: '成功', c: 'x y' });
    expect(() => parseForm('a=1&a=2')).toThrow(/repeated/);
  });

  it('txnTime / payTimeout are China time YYYYMMDDhhmmss', () => {
    expect(formatAcpTime(new Date('2026-01-01T00:00:00Z'))).toBe('20260101080000');
    expect(formatAcpTime(new Date('2026-12-31T16:30:05.900Z'))).toBe('20270101003005');
    expect(parseAcpTime('20260101080000')?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(parseAcpTime('20260230120000')).toBeUndefined();
    expect(parseAcpTime('2026010108000')).toBeUndefined();
  });

  it('traceTime (MMDDhhmmss) takes its year from txnTime, across New Year too', () => {
    expect(traceTimeToDate('1126193000', '20261126192959')?.toISOString()).toBe('2026-11-26T11:30:00.000Z');
    expect(traceTimeToDate('0101000010', '20261231235959')?.toISOString()).toBe('2026-12-31T16:00:10.000Z');
    expect(traceTimeToDate('bad', '20261231235959')).toBeUndefined();
  });
});

describe('provider with an openssl-made chain (no network)', () => {
  const MER_ID = '777290058110048';
  let provider: UnionPayProvider;
  let config: UnionPayConfig;

  beforeAll(() => {
    config = {
      merId: MER_ID,
      signPrivateKey: keyPem('merchant'),
      signCert: pem('merchant'),
      rootCert: pem('root'),
      middleCert: pem('middle'),
      gatewayUrl: 'https://gateway.test.95516.com/gateway/api/',
      frontFormUrl: 'https://shop.example/pay/unionpay/front',
    };
    provider = new UnionPayProvider(config);
  });

  function notification(over: Record<string, string> = {}, signerName = 'signer'): Buffer {
    const f: Record<string, string> = {
      version: '5.1.0',
      encoding: 'UTF-8',
      signMethod: '01',
      txnType: '01',
      txnSubType: '01',
      bizType: '000201',
      accessType: '0',
      merId: MER_ID,
      orderId: 'P2026112600001',
      txnTime: '20261126193000',
      txnAmt: '8800',
      currencyCode: '156',
      queryId: '202611261930001234567',
      traceNo: '123456',
      traceTime: '1126193012',
      respCode: '00',
      respMsg: '成功[0000000]',
      signPubKeyCert: pem(signerName),
      certId: certIdOf(pem(signerName)),
      ...over,
    };
    f.signature = specSign(f, signerName);
    return Buffer.from(new URLSearchParams(f).toString());
  }

  it('refuses a misconfiguration with the variable to fix', () => {
    expect(() => new UnionPayProvider({ ...config, signCert: pem('signer') })).toThrow(/UNIONPAY_SIGN_CERT/);
    expect(() => new UnionPayProvider({ ...config, middleCert: pem('othermiddle') })).toThrow(/UNIONPAY_MIDDLE_CERT/);
    expect(() => new UnionPayProvider({ ...config, signPrivateKey: 'nope' })).toThrow(/UNIONPAY_SIGN_PRIVATE_KEY/);
    expect(provider.certId).toBe(certIdOf(pem('merchant')));
  });

  it('parses a genuine payment notification', async () => {
    const r = await provider.parseNotification({ headers: {}, rawBody: notification() });
    expect(r).toMatchObject({
      ok: true,
      notificationId: '202611261930001234567:01',
      event: { type: 'payment', status: 'SUCCEEDED', paymentNo: 'P2026112600001', amount: 8800, currency: 'CNY', providerTransactionId: '202611261930001234567' },
    });
    expect(r.ok && r.event.type === 'payment' && r.event.paidAt?.toISOString()).toBe('2026-11-26T11:30:12.000Z');
    expect(r.ok && r.mismatch).toBeFalsy();
    expect(r.ok && JSON.stringify(r.payload)).not.toContain('BEGIN CERTIFICATE');
  });

  it('parses a refund notification', async () => {
    const r = await provider.parseNotification({
      headers: {},
      rawBody: notification({ txnType: '04', txnSubType: '00', orderId: 'R2026112600001', origQryId: '202611261930001234567', queryId: '202611262000001234567', txnAmt: '3000' }),
    });
    expect(r).toMatchObject({ ok: true, notificationId: '202611262000001234567:04', event: { type: 'refund', refundNo: 'R2026112600001', status: 'SUCCEEDED', amount: 3000 } });
  });

  it('refuses tampered, foreign, wrong-CN and expired signers; flags another merId', async () => {
    const body = notification().toString().replace('txnAmt=8800', 'txnAmt=1');
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.from(body), /invalid signature/],
      [notification({}, 'foreign'), /middle/],
      [notification({}, 'wrongcn'), /not owned by UnionPay/],
      [notification({}, 'expired'), /expired/],
      [notification({}, 'selfsigned'), /middle/],
      [Buffer.from('not=a&valid=message'), /version/],
      [Buffer.from('a=1&a=2'), /form body/],
    ];
    for (const [rawBody, reason] of cases) {
      const r = await provider.parseNotification({ headers: {}, rawBody });
      expect(r.ok, String(reason)).toBe(false);
      expect(!r.ok && r.reason).toMatch(reason);
    }
    const other = await provider.parseNotification({ headers: {}, rawBody: notification({ merId: '777290058999999' }) });
    expect(other).toMatchObject({ ok: true, mismatch: expect.stringMatching(/merId 777290058999999/) });
    expect(provider.notificationReply(true)).toMatchObject({ status: 200, body: 'ok' });
    expect(provider.notificationReply(false)).toMatchObject({ status: 400, body: 'fail' });
  });

  it('gateway: redirectUrl carries the signed front request; the front form page re-checks it and renders the form', async () => {
    const created = await provider.createPayment({
      channel: PaymentChannel.UNIONPAY_GATEWAY,
      paymentNo: 'P2026112600002',
      amount: 1999,
      currency: 'CNY',
      description: 'tea',
      expiresAt: new Date(Date.now() + 15 * 60_000),
      notifyUrl: 'https://shop.example/notify/unionpay',
      returnUrl: 'https://shop.example/return?o=1&x=<y>',
    });
    expect(created.providerReference).toMatch(/^\d{14}$/);
    const url = new URL(created.redirectUrl!);
    expect(`${url.origin}${url.pathname}`).toBe(config.frontFormUrl);
    const fields = Object.fromEntries(url.searchParams);
    expect(fields).toMatchObject({
      version: '5.1.0', encoding: 'UTF-8', signMethod: '01', txnType: '01', txnSubType: '01', bizType: '000201', channelType: '07',
      accessType: '0', merId: MER_ID, orderId: 'P2026112600002', txnAmt: '1999', currencyCode: '156',
      txnTime: created.providerReference, frontUrl: 'https://shop.example/return?o=1&x=<y>', backUrl: 'https://shop.example/notify/unionpay',
      certId: certIdOf(pem('merchant')),
    });
    expect(specVerify(fields, 'merchant')).toBe(true);

    const page = provider.frontFormPage(url.search);
    expect(page.status).toBe(200);
    expect(page.headers['Content-Security-Policy']).toBe(FRONT_FORM_CSP);
    expect(page.body).toContain('action="https://gateway.test.95516.com/gateway/api/frontTransReq.do"');
    expect(page.body).toContain(`<script>${FRONT_FORM_SCRIPT}</script>`);
    expect(page.body).not.toContain('<y>');
    const hidden = Object.fromEntries([...page.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2].replace(/&#(\d+);/g, (_x, c) => String.fromCharCode(Number(c)))]));
    expect(hidden).toEqual(fields);

    url.searchParams.set('txnAmt', '1');
    expect(provider.frontFormPage(url.searchParams).status).toBe(400);
    expect(provider.frontFormPage('merId=1&txnType=01').status).toBe(400);
  });

  it('gateway: an expired link says so; a missing returnUrl or a bad paymentNo is refused before anything is signed', async () => {
    const base = {
      channel: PaymentChannel.UNIONPAY_GATEWAY,
      amount: 100,
      currency: 'CNY',
      description: 'x',
      notifyUrl: 'https://shop.example/notify/unionpay',
      returnUrl: 'https://shop.example/return',
    };
    const expired = await provider.createPayment({ ...base, paymentNo: 'P2026112600003', expiresAt: new Date(Date.now() - 1000) });
    expect(provider.frontFormPage(new URL(expired.redirectUrl!).search).status).toBe(410);
    await expect(provider.createPayment({ ...base, paymentNo: 'P2026112600004', expiresAt: new Date(), returnUrl: null })).rejects.toMatchObject({ providerCode: 'PARAM_ERROR' });
    await expect(provider.createPayment({ ...base, paymentNo: 'P-2026-1', expiresAt: new Date() })).rejects.toMatchObject({ providerCode: 'PARAM_ERROR' });
    await expect(provider.createPayment({ ...base, paymentNo: 'P2026112600005', expiresAt: new Date(), currency: 'USD' })).rejects.toMatchObject({ providerCode: 'UNSUPPORTED_CURRENCY' });
  });

  it('query and refund need the keys UnionPay identifies transactions by', async () => {
    await expect(provider.queryPayment({ channel: PaymentChannel.UNIONPAY_QR, paymentNo: 'P2026112600001' })).rejects.toMatchObject({ providerCode: 'MISSING_TXN_TIME' });
    await expect(provider.queryRefund({ channel: PaymentChannel.UNIONPAY_QR, paymentNo: 'P1', refundNo: 'R2026112600001' })).rejects.toMatchObject({ providerCode: 'MISSING_TXN_TIME' });
    await expect(
      provider.refund({ channel: PaymentChannel.UNIONPAY_QR, paymentNo: 'P1', refundNo: 'R2026112600001', amount: 1, totalAmount: 1, currency: 'CNY', notifyUrl: 'https://x.example/n' }),
    ).rejects.toMatchObject({ providerCode: 'MISSING_ORIG_QRY_ID' });
    await expect(provider.closePayment({ channel: PaymentChannel.UNIONPAY_QR, paymentNo: 'P2026112600001' })).resolves.toBeUndefined();
  });
});
