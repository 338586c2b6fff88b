/** Key and identifier generation the simulators share when they make credentials for merchants or themselves. */
import { generateKeyPairSync, randomInt } from 'node:crypto';

export interface RsaKeyPairPem {
  /** PKCS#8 PEM. */
  privateKey: string;
  /** SPKI PEM. */
  publicKey: string;
}

/** A fresh RSA 2048 key pair (PKCS#8 / SPKI PEM), the size WeChat Pay and Alipay RSA2 keys have. */
export function generateRsaKeyPair(): RsaKeyPairPem {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

/** `n` random decimal digits (leading zeros possible), for provider ids shaped like the real ones. */
export function randomDigits(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(randomInt(10));
  return s;
}
