/**
 * UnionPay ACP 5.1.0 cryptography and message encoding, shared by the adapter (merchant side) and the simulator
 * (UnionPay side). Pure functions, no I/O, node:crypto only.
 *
 * Signature (`signMethod=01`, `version=5.1.0`; official SDK `SDKUtil.sign` / `validate`, `SecureUtil.sha256X16`,
 * `signBySoft256`):
 *   1. take every field but `signature`, sort by key, join as `k1=v1&k2=v2` (raw values, no URL encoding);
 *   2. SHA-256 of that string (UTF-8), as 64 lowercase hex characters;
 *   3. SHA256withRSA (PKCS#1 v1.5) over the hex string's bytes, base64 → `signature`.
 * Requests carry `certId` (the merchant certificate's serial number in decimal). Answers and notifications carry
 * the signer's certificate in `signPubKeyCert` (itself a signed field); it is trusted only when
 * (`CertUtil.verifyCertificate`) it is within its validity, chains to the configured middle → root certificates,
 * and the third `@`-separated part of its CN is `中国银联股份有限公司` (UnionPay's test environment signs as
 * `00040000:SIGN`, accepted only when asked to).
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import type { AcpFields } from './types';

/** The owner name UnionPay's production signing certificates carry in their CN (`SDKConstants.UNIONPAY_CNNAME`). */
export const UNIONPAY_CN_NAME = '中国银联股份有限公司';
/** The owner field of UnionPay's test-environment signing certificate. */
export const UNIONPAY_TEST_CN_NAME = '00040000:SIGN';

// ---- signature ---------------------------------------------------------------------------------------------------

/** `k1=v1&k2=v2…` over every field but `signature`, keys sorted (UTF-16 code-unit order, as Java's TreeMap). */
export function buildSignString(fields: AcpFields): string {
  return Object.keys(fields)
    .filter((k) => k !== 'signature')
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('&');
}

/** Lowercase hex SHA-256 of the UTF-8 string. */
export function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** base64 SHA256withRSA over `sha256Hex(buildSignString(fields))`. */
export function computeSignature(fields: AcpFields, privateKey: KeyObject): string {
  const digestHex = sha256Hex(buildSignString(fields));
  return sign('sha256', Buffer.from(digestHex, 'utf8'), privateKey).toString('base64');
}

/** Verifies `fields.signature`; any malformed input is simply `false`. */
export function verifySignature(fields: AcpFields, publicKey: KeyObject): boolean {
  const signature = fields.signature;
  if (typeof signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return false;
  try {
    const digestHex = sha256Hex(buildSignString(fields));
    return verify('sha256', Buffer.from(digestHex, 'utf8'), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/**
 * The fields to send, signed: empty values are dropped (the SDK's `filterBlank`, so what is signed is what is
 * sent), `certId` is set, then `signature`. Extra fields (e.g. `signPubKeyCert` on UnionPay's side) are signed too.
 */
export function signFields(fields: AcpFields, privateKey: KeyObject, certId: string): AcpFields {
  const out: AcpFields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'signature' || v === undefined || v === null || String(v).trim() === '') continue;
    out[k] = String(v);
  }
  out.certId = certId;
  out.signature = computeSignature(out, privateKey);
  return out;
}

// ---- certificates ------------------------------------------------------------------------------------------------

export function toPrivateKey(pem: string | KeyObject): KeyObject {
  return typeof pem === 'string' ? createPrivateKey(pem) : pem;
}

export function toCertificate(pem: string | X509Certificate): X509Certificate {
  return typeof pem === 'string' ? new X509Certificate(pem) : pem;
}

/** `certId`: the certificate's serial number in decimal (`X509Certificate.getSerialNumber().toString()`). */
export function certIdOf(cert: string | X509Certificate): string {
  const hex = toCertificate(cert).serialNumber.replace(/[^0-9A-Fa-f]/g, '');
  return BigInt(`0x${hex || '0'}`).toString(10);
}

/** The value of the (last) CN attribute of the subject, or undefined. */
export function subjectCommonName(cert: X509Certificate): string | undefined {
  let cn: string | undefined;
  for (const line of cert.subject.split('\n')) {
    // Node prints one attribute per line; a multi-valued RDN joins its attributes with `+`.
    for (const part of line.split(/(?<!\\)\+/)) {
      if (part.startsWith('CN=')) cn = part.slice(3).replace(/\\(.)/g, '$1');
    }
  }
  return cn;
}

/** The owner field of a UnionPay CN (`041@Z…@中国银联股份有限公司@00000001` → its third `@` part). */
export function cnOwner(cert: X509Certificate): string | undefined {
  const cn = subjectCommonName(cert);
  if (cn === undefined) return undefined;
  const parts = cn.split('@');
  return parts.length > 2 ? parts[2] : undefined;
}

export interface SignerTrust {
  /** UnionPay's root certificate (trust anchor). */
  root: X509Certificate;
  /** UnionPay's middle certificate, issued by `root`. */
  middle: X509Certificate;
  /** Accept the test environment's `00040000:SIGN` owner too. */
  allowTestEnvironmentSigner?: boolean;
}

function withinValidity(cert: X509Certificate, now: number): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return Number.isFinite(from) && Number.isFinite(to) && from <= now && now <= to;
}

function issuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Checks the configured root and middle certificates once (at adapter construction): the root is a self-signed CA,
 * the middle a CA issued by it. Throws an Error naming what to fix.
 */
export function assertTrustAnchors(root: X509Certificate, middle: X509Certificate): void {
  if (!root.ca || !issuedBy(root, root)) {
    throw new Error('UnionPay root certificate (UNIONPAY_ROOT_CERT) must be a self-signed CA certificate');
  }
  if (!middle.ca) throw new Error('UnionPay middle certificate (UNIONPAY_MIDDLE_CERT) must be a CA certificate');
  if (!issuedBy(middle, root)) {
    throw new Error('UnionPay middle certificate (UNIONPAY_MIDDLE_CERT) is not issued by the configured root certificate');
  }
}

/**
 * Decides whether a `signPubKeyCert` may sign for UnionPay: parseable, within its validity, issued by the
 * configured middle certificate which is itself a valid CA issued by the root (both within their validity), and
 * owned by UnionPay (CN owner field). Returns the certificate, or why not.
 */
export function checkSignerCertificate(
  pem: string,
  trust: SignerTrust,
  now: number = Date.now(),
): { ok: true; cert: X509Certificate } | { ok: false; reason: string } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return { ok: false, reason: 'signPubKeyCert is not an X.509 certificate' };
  }
  if (!withinValidity(cert, now)) return { ok: false, reason: 'signPubKeyCert is expired or not yet valid' };
  if (!issuedBy(cert, trust.middle)) {
    return { ok: false, reason: 'signPubKeyCert is not issued by the configured UnionPay middle certificate' };
  }
  if (!trust.middle.ca || !withinValidity(trust.middle, now) || !issuedBy(trust.middle, trust.root)) {
    return { ok: false, reason: 'the configured UnionPay middle certificate is not a valid CA under the root' };
  }
  if (!withinValidity(trust.root, now)) return { ok: false, reason: 'the configured UnionPay root certificate has expired' };
  const owner = cnOwner(cert);
  const ownerOk = owner === UNIONPAY_CN_NAME || (trust.allowTestEnvironmentSigner === true && owner === UNIONPAY_TEST_CN_NAME);
  if (!ownerOk) return { ok: false, reason: `signPubKeyCert is not owned by UnionPay (CN owner ${JSON.stringify(owner ?? null)})` };
  return { ok: true, cert };
}

/**
 * Verifies a message signed by UnionPay (an answer, a notification, a front return): 5.1.0 and `signMethod=01`,
 * a trusted `signPubKeyCert`, and a valid `signature` over all the other fields.
 */
export function verifyUnionPayMessage(
  fields: AcpFields,
  trust: SignerTrust,
  now: number = Date.now(),
): { ok: true } | { ok: false; reason: string } {
  if (fields.version !== '5.1.0') return { ok: false, reason: `unsupported version ${JSON.stringify(fields.version ?? null)}` };
  if (fields.signMethod !== '01') return { ok: false, reason: `unsupported signMethod ${JSON.stringify(fields.signMethod ?? null)}` };
  if (!fields.signature) return { ok: false, reason: 'unsigned message (no signature)' };
  if (!fields.signPubKeyCert) return { ok: false, reason: 'no signPubKeyCert' };
  const signer = checkSignerCertificate(fields.signPubKeyCert, trust, now);
  if (!signer.ok) return signer;
  if (!verifySignature(fields, signer.cert.publicKey)) return { ok: false, reason: 'invalid signature' };
  return { ok: true };
}

/** Public key of a PEM certificate or key. */
export function publicKeyOf(pem: string): KeyObject {
  return pem.includes('CERTIFICATE') ? new X509Certificate(pem).publicKey : createPublicKey(pem);
}

// ---- encodings ---------------------------------------------------------------------------------------------------

/**
 * Parses a synchronous answer (`k=v&k=v`, raw values) as the official SDK does (`SDKUtil.parseQString`): the first
 * `=` ends a key; `&` ends a value unless inside `{…}` or `[…]`; a body wrapped in `{…}` is unwrapped first.
 * Throws on an empty key or a repeated key.
 */
export function parseAcpResponse(text: string): AcpFields {
  let s = text.trim();
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1);
  const out: AcpFields = {};
  if (s === '') return out;
  let key = '';
  let buf = '';
  let inKey = true;
  let closer = '';
  const put = () => {
    const k = inKey ? buf : key;
    const v = inKey ? '' : buf;
    if (k === '') throw new Error('malformed UnionPay answer: empty key');
    if (Object.prototype.hasOwnProperty.call(out, k)) throw new Error(`malformed UnionPay answer: repeated key ${k}`);
    out[k] = v;
  };
  for (const ch of s) {
    if (inKey) {
      if (ch === '=') {
        key = buf;
        buf = '';
        inKey = false;
      } else {
        buf += ch;
      }
      continue;
    }
    if (closer) {
      if (ch === closer) closer = '';
    } else if (ch === '{') {
      closer = '}';
    } else if (ch === '[') {
      closer = ']';
    }
    if (ch === '&' && !closer) {
      put();
      buf = '';
      inKey = true;
    } else {
      buf += ch;
    }
  }
  put();
  return out;
}

/** Serializes an answer the way UnionPay sends it: `k=v&k=v`, raw values. */
export function formatAcpResponse(fields: AcpFields): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** Decodes a form body (`application/x-www-form-urlencoded`, UTF-8) once; a repeated field is refused. */
export function parseForm(body: string | URLSearchParams): AcpFields {
  const params = typeof body === 'string' ? new URLSearchParams(body) : body;
  const out: AcpFields = {};
  for (const [k, v] of params) {
    if (Object.prototype.hasOwnProperty.call(out, k)) throw new Error(`repeated field ${k}`);
    out[k] = v;
  }
  return out;
}

export function encodeForm(fields: AcpFields): string {
  return new URLSearchParams(fields).toString();
}

// ---- China time --------------------------------------------------------------------------------------------------

const CHINA_OFFSET_MS = 8 * 3600_000;

/** `YYYYMMDDhhmmss` in China time (UTC+8, no daylight saving): `txnTime`, `payTimeout`. */
export function formatAcpTime(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('invalid date');
  return new Date(date.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 19).replace(/\D/g, '');
}

/** Parses `YYYYMMDDhhmmss` China time; undefined when malformed. */
export function parseAcpTime(s: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s ?? '');
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number);
  const ms = Date.UTC(y, mo - 1, d, h, mi, se) - CHINA_OFFSET_MS;
  const back = new Date(ms + CHINA_OFFSET_MS);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) return undefined;
  return new Date(ms);
}

/** `MMDDhhmmss` China time (`traceTime`). */
export function formatTraceTime(date: Date): string {
  return formatAcpTime(date).slice(4);
}

/**
 * `traceTime` (`MMDDhhmmss`, China time, no year) as a Date, taking the year from the transaction's `txnTime`
 * (and the next year when that would put it more than a day before `txnTime`, across New Year).
 */
export function traceTimeToDate(traceTime: string | undefined, txnTime: string | undefined): Date | undefined {
  if (!traceTime || !/^\d{10}$/.test(traceTime) || !txnTime || !/^\d{14}$/.test(txnTime)) return undefined;
  const year = Number(txnTime.slice(0, 4));
  const base = parseAcpTime(txnTime);
  const guess = parseAcpTime(`${year}${traceTime}`);
  if (!base || !guess) return undefined;
  if (guess.getTime() < base.getTime() - 86_400_000) return parseAcpTime(`${year + 1}${traceTime}`);
  return guess;
}
