/**
 * SHA256withRSA (PKCS#1 v1.5, base64 signatures) and key loading, as WeChat Pay API v3 (`WECHATPAY2-SHA256-RSA2048`)
 * and Alipay RSA2 both use them. Only the signing; what is signed is each provider's own rule (its `crypto.ts`).
 * Pure functions, no I/O.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyLike, type KeyObject } from 'node:crypto';

export function toPrivateKey(key: KeyLike): KeyObject {
  return typeof key === 'string' || Buffer.isBuffer(key) ? createPrivateKey(key) : (key as KeyObject);
}

export function toPublicKey(key: KeyLike): KeyObject {
  return typeof key === 'string' || Buffer.isBuffer(key) ? createPublicKey(key) : (key as KeyObject);
}

/** SHA256withRSA (PKCS#1 v1.5), base64. */
export function rsaSign(message: string | Buffer, privateKey: KeyLike): string {
  return sign('sha256', typeof message === 'string' ? Buffer.from(message, 'utf8') : message, toPrivateKey(privateKey)).toString(
    'base64',
  );
}

/** Verifies a base64 SHA256withRSA signature; any malformed input is simply `false`. */
export function rsaVerify(message: string | Buffer, signatureBase64: string, publicKey: KeyLike): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureBase64)) return false;
  try {
    return verify(
      'sha256',
      typeof message === 'string' ? Buffer.from(message, 'utf8') : message,
      toPublicKey(publicKey),
      Buffer.from(signatureBase64, 'base64'),
    );
  } catch {
    return false;
  }
}
