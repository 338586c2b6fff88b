/**
 * WeChat Pay API v3 cryptography, shared by the adapter (merchant side) and the simulator (WeChat Pay side).
 *
 * Pure functions, no I/O. Sources: WeChat Pay APIv3 "签名生成 / 签名验证 / 回调通知解密" docs
 * (pay.weixin.qq.com/doc/v3/merchant/4012365336, 4013053249, 4012071382) and the published vectors of
 * wechatpay-axios-plugin `tests/lib/aes.test.js`.
 *
 * - Request signature: SHA256withRSA (PKCS#1 v1.5) over `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n`, base64,
 *   sent as `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`.
 * - Response / callback signature: SHA256withRSA over `TIMESTAMP\nNONCE\nRAW_BODY\n` with WeChat Pay's key.
 * - JSAPI `paySign`: SHA256withRSA over `appId\ntimeStamp\nnonceStr\npackage\n` with the merchant's key.
 * - Callback resource: AES-256-GCM, key = APIv3 key (32 bytes), IV = `nonce`, AAD = `associated_data`,
 *   base64(ciphertext ‖ 16-byte tag).
 */
import { createCipheriv, createDecipheriv, randomInt } from 'node:crypto';
import { rsaSign, rsaVerify, toPrivateKey, toPublicKey } from '../shared/rsa';

export { rsaSign, rsaVerify, toPrivateKey, toPublicKey };

/** Scheme of the APIv3 `Authorization` header. */
export const AUTH_SCHEME = 'WECHATPAY2-SHA256-RSA2048';
/** Clock skew WeChat Pay tolerates, in both directions (seconds). */
export const MAX_CLOCK_SKEW_SECONDS = 300;
/** Prefix of the deliberately invalid signatures WeChat Pay sends to probe that merchants verify callbacks. */
export const SIGNTEST_PREFIX = 'WECHATPAY/SIGNTEST/';

const AES_GCM_TAG_BYTES = 16;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Lines joined by `\n`, with a trailing `\n` after the last one (every WeChat Pay signing message ends so). */
function lines(...pieces: Array<string | number>): string {
  return pieces.map(String).join('\n') + '\n';
}

/** `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n`; GET and bodiless requests sign an empty body line. */
export function buildRequestMessage(
  method: string,
  pathAndQuery: string,
  timestamp: string | number,
  nonce: string,
  body = '',
): string {
  return lines(method.toUpperCase(), pathAndQuery, timestamp, nonce, body);
}

/** `TIMESTAMP\nNONCE\nBODY\n` as bytes, so a raw body is signed/verified exactly as received (never re-encoded). */
export function buildResponseMessage(timestamp: string | number, nonce: string, body: Buffer | string): Buffer {
  const raw = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`, 'utf8'), raw, Buffer.from('\n', 'utf8')]);
}

/** `appId\ntimeStamp\nnonceStr\npackage\n`: what JSAPI/mini-program `paySign` covers. */
export function buildJsapiPayMessage(appId: string, timeStamp: string, nonceStr: string, pkg: string): string {
  return lines(appId, timeStamp, nonceStr, pkg);
}

export interface AuthorizationFields {
  mchid: string;
  nonce_str: string;
  timestamp: string;
  serial_no: string;
  signature: string;
}

export function buildAuthorization(f: AuthorizationFields): string {
  return `${AUTH_SCHEME} mchid="${f.mchid}",nonce_str="${f.nonce_str}",timestamp="${f.timestamp}",serial_no="${f.serial_no}",signature="${f.signature}"`;
}

/** Parses an APIv3 `Authorization` header (fields in any order); `null` if the scheme or a field is missing. */
export function parseAuthorization(header: string | undefined): AuthorizationFields | null {
  if (!header) return null;
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space) !== AUTH_SCHEME) return null;
  const fields: Record<string, string> = {};
  const re = /\s*([a-z_]+)="([^"]*)"\s*(?:,|$)/gy;
  const rest = header.slice(space + 1);
  let m: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (m = re.exec(rest))) fields[m[1]] = m[2];
  if (re.lastIndex !== rest.length && rest.trim() !== '') return null;
  const { mchid, nonce_str, timestamp, serial_no, signature } = fields;
  if (!mchid || !nonce_str || !timestamp || !serial_no || !signature) return null;
  return { mchid, nonce_str, timestamp, serial_no, signature };
}

/** Unix time in whole seconds. */
export function unixTimestamp(now: number = Date.now()): number {
  return Math.floor(now / 1000);
}

/** True when `timestamp` is a decimal Unix time within ±`maxSkew` seconds of `now`. */
export function timestampWithinWindow(
  timestamp: string,
  now: number = Date.now(),
  maxSkew: number = MAX_CLOCK_SKEW_SECONDS,
): boolean {
  if (!/^\d{1,12}$/.test(timestamp)) return false;
  return Math.abs(unixTimestamp(now) - Number(timestamp)) <= maxSkew;
}

/** A random base62 string (WeChat's SDKs use 32 characters for nonces). */
export function generateNonce(length = 32): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[randomInt(62)];
  return out;
}

/** AES-256-GCM encrypt: base64(ciphertext ‖ tag). `key` is the 32-byte APIv3 key as text or bytes. */
export function aesGcmEncrypt(plaintext: string, key: string | Buffer, nonce: string, aad = ''): string {
  const cipher = createCipheriv('aes-256-gcm', keyBytes(key), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  return Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString('base64');
}

/** AES-256-GCM decrypt of base64(ciphertext ‖ tag); throws when the tag (key, nonce, AAD or ciphertext) is wrong. */
export function aesGcmDecrypt(ciphertextBase64: string, key: string | Buffer, nonce: string, aad = ''): string {
  const buf = Buffer.from(ciphertextBase64, 'base64');
  if (buf.length < AES_GCM_TAG_BYTES) throw new Error('ciphertext shorter than the GCM tag');
  const decipher = createDecipheriv('aes-256-gcm', keyBytes(key), Buffer.from(nonce, 'utf8'), {
    authTagLength: AES_GCM_TAG_BYTES,
  });
  decipher.setAuthTag(buf.subarray(buf.length - AES_GCM_TAG_BYTES));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  return Buffer.concat([decipher.update(buf.subarray(0, buf.length - AES_GCM_TAG_BYTES)), decipher.final()]).toString(
    'utf8',
  );
}

function keyBytes(key: string | Buffer): Buffer {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  if (bytes.length !== 32) throw new RangeError(`the APIv3 key must be 32 bytes, got ${bytes.length}`);
  return bytes;
}

/**
 * RFC 3339 in China time, the format WeChat Pay uses for `time_expire`, `success_time`, `create_time`:
 * `2026-11-26T19:30:00+08:00` (whole seconds; China has no daylight saving time).
 */
export function formatRfc3339China(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('invalid date');
  const shifted = new Date(Math.floor(date.getTime() / 1000) * 1000 + 8 * 3600_000);
  return `${shifted.toISOString().slice(0, 19)}+08:00`;
}
