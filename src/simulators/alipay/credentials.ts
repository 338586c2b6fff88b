import { createPrivateKey } from 'node:crypto';
import { generateRsaKeyPair, randomDigits } from '../shared/credentials';

/** What a merchant holds for one Alipay application, plus the public half the simulator needs to know. */
export interface AlipayAppCredentials {
  /** 16 digits starting `2021`, like the app ids Alipay issues today. */
  appId: string;
  /** The merchant's Alipay user id (PID): 16 digits starting `2088`. */
  sellerId: string;
  /** The application private key, PEM (PKCS#8 by default, PKCS#1 on request). */
  appPrivateKey: string;
  /** SPKI PEM: what `registerApp` takes (and what a merchant uploads to Alipay's console). */
  appPublicKey: string;
}

export interface GenerateAppCredentialsOptions {
  appId?: string;
  sellerId?: string;
  /** PEM encoding of the private key: `PKCS8` (`BEGIN PRIVATE KEY`, default) or `PKCS1` (`BEGIN RSA PRIVATE KEY`). */
  keyType?: 'PKCS1' | 'PKCS8';
}

/**
 * Fresh application credentials for the simulator: an RSA 2048 key pair, an app id and a seller id. Used by
 * `npm start` when no ALIPAY_* configuration is given, and by tests.
 */
export function generateAlipayAppCredentials(options: GenerateAppCredentialsOptions = {}): AlipayAppCredentials {
  const { privateKey, publicKey } = generateRsaKeyPair();
  const appPrivateKey =
    options.keyType === 'PKCS1' ? createPrivateKey(privateKey).export({ type: 'pkcs1', format: 'pem' }).toString() : privateKey;
  return {
    appId: options.appId ?? `2021${randomDigits(12)}`,
    sellerId: options.sellerId ?? `2088${randomDigits(12)}`,
    appPrivateKey,
    appPublicKey: publicKey,
  };
}
