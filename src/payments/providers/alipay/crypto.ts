/**
 * Alipay OpenAPI (gateway.do, RSA2) signing rules, the form codec of notifications and China time, shared by the
 * adapter (merchant side) and the simulator (Alipay side). Pure functions, no I/O.
 *
 * Sources: Alipay open docs "自行实现签名" (opendocs.alipay.com/common/02kf5q), "自行实现验签" (common/02mse7),
 * "异步通知说明" (open/270/105902); alipay-sdk 4.x `src/util.ts` (`sign`) and `src/alipay.ts` (`checkResponseSign`,
 * `checkNotifySign`); the published notification vector (`alipay-notify-vector.json`, from alipay-sdk's tests).
 *
 * - Request: every parameter but `sign` and empty values (`sign_type` included), sorted by key, `k=v` joined by `&`
 *   with raw (not URL-encoded) values; SHA256withRSA with the application key, base64.
 * - Response: `{"<method, dots as underscores>_response":{…},"sign":"…"}`; the signature covers the exact text of
 *   the `_response` object as sent (never a re-serialization).
 * - Notification and synchronous return: every parameter but `sign` and `sign_type`, decoded once, sorted, `k=v&…`;
 *   SHA256withRSA with Alipay's key. (Keeping `sign_type` fails on the published vector.)
 */
import { createPrivateKey, createPublicKey, type KeyLike, type KeyObject } from 'node:crypto';
import iconv from 'iconv-lite';
import { rsaSign, rsaVerify } from '../shared/rsa';

export { rsaSign, rsaVerify };

/** The only signature type this service speaks (SHA256withRSA). Plain `RSA` (SHA1) is deprecated by Alipay. */
export const SIGN_TYPE = 'RSA2';

const CHINA_OFFSET_MS = 8 * 3600_000;

function sortedPairs(params: Record<string, string>, keep: (key: string, value: string) => boolean): string {
  return Object.keys(params)
    .filter((k) => keep(k, params[k]))
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
}

/** What a request signature covers: all but `sign` and empty values, sorted, `k=v&…`. */
export function requestSignContent(params: Record<string, string>): string {
  return sortedPairs(params, (k, v) => k !== 'sign' && v !== undefined && v !== null && v !== '');
}

/** What a notification (or synchronous return) signature covers: all but `sign` and `sign_type`, sorted, `k=v&…`. */
export function notifySignContent(params: Record<string, string>): string {
  return sortedPairs(params, (k) => k !== 'sign' && k !== 'sign_type');
}

/** The parameters with `sign_type=RSA2` and `sign` added, signed as Alipay signs notifications. */
export function signNotifyParams(params: Record<string, string>, alipayPrivateKey: KeyLike): Record<string, string> {
  const { sign: _sign, ...rest } = params;
  return { ...rest, sign_type: SIGN_TYPE, sign: rsaSign(notifySignContent(rest), alipayPrivateKey) };
}

export type NotifyVerification = { ok: true } | { ok: false; reason: string };

/** Verifies decoded notification / synchronous-return parameters with Alipay's public key. */
export function verifyNotifyParams(params: Record<string, string>, alipayPublicKey: KeyLike): NotifyVerification {
  const sign = params.sign;
  if (!sign) return { ok: false, reason: 'missing sign' };
  if (params.sign_type !== undefined && params.sign_type !== SIGN_TYPE) {
    return { ok: false, reason: `unsupported sign_type ${params.sign_type}` };
  }
  return rsaVerify(notifySignContent(params), sign, alipayPublicKey) ? { ok: true } : { ok: false, reason: 'invalid signature' };
}

/** `alipay.trade.precreate` → `alipay_trade_precreate_response`. */
export function responseKey(method: string): string {
  return `${method.replace(/\./g, '_')}_response`;
}

/** JSON as Alipay's gateway writes it: `/` escaped as `\/` (so only the raw text, never a re-serialization, verifies). */
export function alipayJson(value: unknown): string {
  return JSON.stringify(value).replace(/\//g, '\\/');
}

/** A gateway answer: `{"<key>":<body>,"sign":"<RSA2 over the exact body text>"}`. */
export function signedResponseText(key: string, body: object, alipayPrivateKey: KeyLike): string {
  const inner = alipayJson(body);
  return `{${JSON.stringify(key)}:${inner},"sign":${JSON.stringify(rsaSign(inner, alipayPrivateKey))}}`;
}

// ---- keys --------------------------------------------------------------------------------------------------------

export type PrivateKeyType = 'PKCS1' | 'PKCS8';

function bareBase64(key: string): Buffer | undefined {
  const body = key.replace(/\s+/g, '');
  return /^[A-Za-z0-9+/]+={0,2}$/.test(body) ? Buffer.from(body, 'base64') : undefined;
}

/**
 * The PEM encoding of an application private key, by its header (`BEGIN RSA PRIVATE KEY` is PKCS#1, `BEGIN PRIVATE
 * KEY` PKCS#8); a bare base64 body (as Alipay's key tool shows it) is recognised by parsing it. Throws an error that
 * says how to fix the key otherwise.
 */
export function privateKeyType(key: string): PrivateKeyType {
  const fix = 'give the application private key as PEM (BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY) or its bare base64 body';
  let type: PrivateKeyType | undefined;
  let object: KeyObject | undefined;
  if (key.includes(pemHeader('ENCRYPTED PRIVATE KEY'))) throw new Error(`the Alipay private key is encrypted: ${fix}, unencrypted`);
  if (key.includes(pemHeader('RSA PRIVATE KEY'))) type = 'PKCS1';
  else if (key.includes(pemHeader('PRIVATE KEY'))) type = 'PKCS8';
  try {
    if (type) {
      object = createPrivateKey(key.trim());
    } else {
      const der = bareBase64(key);
      if (der) {
        for (const candidate of ['pkcs8', 'pkcs1'] as const) {
          try {
            object = createPrivateKey({ key: der, format: 'der', type: candidate });
            type = candidate === 'pkcs8' ? 'PKCS8' : 'PKCS1';
            break;
          } catch {
            /* try the other encoding */
          }
        }
      }
    }
  } catch {
    object = undefined;
  }
  if (!type || !object) throw new Error(`the Alipay private key cannot be read: ${fix}`);
  if (object.asymmetricKeyType !== 'rsa') throw new Error(`the Alipay private key must be an RSA key (RSA2), not ${object.asymmetricKeyType}`);
  return type;
}

/** An Alipay public key as SPKI PEM, from PEM (SPKI or PKCS#1) or the bare base64 body Alipay's console shows. */
export function toPublicKeyPem(key: string): string {
  let object: KeyObject | undefined;
  try {
    if (key.includes('-----BEGIN')) {
      object = createPublicKey(key.trim());
    } else {
      const der = bareBase64(key);
      if (der) object = createPublicKey({ key: der, format: 'der', type: 'spki' });
    }
  } catch {
    object = undefined;
  }
  if (!object || object.asymmetricKeyType !== 'rsa') {
    throw new Error('the Alipay public key cannot be read: give it as PEM (BEGIN PUBLIC KEY) or its bare base64 body');
  }
  return object.export({ type: 'spki', format: 'pem' }).toString().trim();
}

// ---- application/x-www-form-urlencoded in the message's own charset ----------------------------------------------

export class FormDecodeError extends Error {}

/** Percent-decoding to bytes (`+` is a space); a `%` not followed by two hex digits stays literal, like URLSearchParams. */
function percentDecode(latin1: string): Buffer {
  const out = Buffer.alloc(latin1.length);
  let n = 0;
  for (let i = 0; i < latin1.length; i++) {
    const c = latin1.charCodeAt(i);
    if (c === 0x2b) {
      out[n++] = 0x20;
    } else if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(latin1.slice(i + 1, i + 3))) {
      out[n++] = parseInt(latin1.slice(i + 1, i + 3), 16);
      i += 2;
    } else {
      out[n++] = c & 0xff;
    }
  }
  return out.subarray(0, n);
}

/**
 * Decodes a form body once, in the charset the body itself names (`charset=…`, Alipay's own parameter; `utf-8` when
 * absent). Throws FormDecodeError for an unknown charset or a parameter given twice.
 */
export function decodeForm(raw: Buffer, defaultCharset = 'utf-8'): { params: Record<string, string>; charset: string } {
  const pairs = raw
    .toString('latin1')
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      return i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
    });
  const named = pairs.find(([k]) => percentDecode(k).toString('latin1') === 'charset');
  const charset = named ? percentDecode(named[1]).toString('latin1').trim() || defaultCharset : defaultCharset;
  if (!iconv.encodingExists(charset)) throw new FormDecodeError(`unsupported charset ${charset}`);
  const params = new Map<string, string>();
  for (const [k, v] of pairs) {
    const key = iconv.decode(percentDecode(k), charset);
    if (params.has(key)) throw new FormDecodeError(`parameter ${key} given twice`);
    params.set(key, iconv.decode(percentDecode(v), charset));
  }
  return { params: Object.fromEntries(params), charset };
}

const UNRESERVED = /[A-Za-z0-9\-_.*]/;

/** Form-encodes in `charset` the way Java's URLEncoder does (what Alipay's servers send): space as `+`, `%XX` bytes. */
export function encodeForm(params: Record<string, string>, charset = 'utf-8'): string {
  const enc = (s: string) => {
    let out = '';
    for (const byte of iconv.encode(s, charset)) {
      const ch = String.fromCharCode(byte);
      out += byte === 0x20 ? '+' : byte < 0x80 && UNRESERVED.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    return out;
  };
  return Object.entries(params)
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .join('&');
}

// ---- China time (UTC+8, no daylight saving time), whatever the host's TZ -------------------------------------------

/** `yyyy-MM-dd HH:mm:ss` in China time (`timestamp`, `time_expire`, `gmt_payment`, …); `.SSS` added with `millis`. */
export function formatChinaDateTime(date: Date, millis = false): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('invalid date');
  const iso = new Date(date.getTime() + CHINA_OFFSET_MS).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, millis ? 23 : 19)}`;
}

/** Parses `yyyy-MM-dd HH:mm:ss[.SSS]` as China time; `undefined` when malformed or not a real date. */
export function parseChinaDateTime(text: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?$/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, ms] = m;
  const date = new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, Number((ms ?? '').padEnd(3, '0'))) - CHINA_OFFSET_MS);
  return formatChinaDateTime(date) === text.slice(0, 19) ? date : undefined;
}

/** A PEM header line for `label` (built, so no key-looking literal sits in the source). */
function pemHeader(label: string): string {
  return `-----BEGIN ${label}-----`;
}
