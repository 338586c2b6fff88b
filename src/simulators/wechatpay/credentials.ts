import { randomBytes } from 'node:crypto';
import { generateNonce } from '../../payments/providers/wechatpay/crypto';
import { generateRsaKeyPair, randomDigits } from '../shared/credentials';

/** Everything a merchant holds for WeChat Pay API v3, plus the public half the simulator needs to know. */
export interface MerchantCredentials {
  mchid: string;
  appid: string;
  /** Serial of the merchant API certificate (40 hex digits, as WeChat issues them). */
  merchantSerial: string;
  /** PKCS#8 PEM. */
  merchantPrivateKey: string;
  /** SPKI PEM: what `registerMerchant` takes. */
  merchantPublicKey: string;
  /** 32 characters. */
  apiV3Key: string;
}

/**
 * Fresh merchant credentials for the simulator: an RSA 2048 key pair, a certificate serial, a 32-character APIv3
 * key. Used by `npm start` when no WECHATPAY_* configuration is given, and by tests.
 */
export function generateMerchantCredentials(mchid?: string, appid?: string): MerchantCredentials {
  const { privateKey, publicKey } = generateRsaKeyPair();
  return {
    mchid: mchid ?? `19${randomDigits(8)}`,
    appid: appid ?? `wx${randomBytes(8).toString('hex')}`,
    merchantSerial: randomBytes(20).toString('hex').toUpperCase(),
    merchantPrivateKey: privateKey,
    merchantPublicKey: publicKey,
    apiV3Key: generateNonce(32),
  };
}

/** A WeChat Pay public key id: `PUB_KEY_ID_` followed by digits. */
export function generatePublicKeyId(): string {
  return `PUB_KEY_ID_01${randomDigits(26)}`;
}
