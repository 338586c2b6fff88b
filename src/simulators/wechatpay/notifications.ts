/**
 * WeChat Pay callback notifications, built and signed exactly as WeChat Pay sends them
 * (pay.weixin.qq.com/doc/v3/merchant/4012791861 支付成功回调通知, 4012791865 退款结果回调通知):
 * body `{id, create_time, resource_type, event_type, summary, resource{original_type, algorithm, ciphertext,
 * associated_data, nonce}}`, resource encrypted with the merchant's APIv3 key (AES-256-GCM), headers
 * `Wechatpay-Timestamp/Nonce/Signature/Serial` signed over `TIMESTAMP\nNONCE\nBODY\n` with WeChat Pay's key.
 *
 * These are also "the real signer" for tests: build a notification, sign it, then break whatever the test needs.
 */
import { randomUUID, type KeyLike } from 'node:crypto';
import {
  aesGcmEncrypt,
  AUTH_SCHEME,
  buildResponseMessage,
  formatRfc3339China,
  generateNonce,
  rsaSign,
  unixTimestamp,
} from '../../payments/providers/wechatpay/crypto';
import type { NotificationBody, NotificationEventType } from '../../payments/providers/wechatpay/types';

const SUMMARIES: Readonly<Record<NotificationEventType, string>> = {
  'TRANSACTION.SUCCESS': '支付成功',
  'REFUND.SUCCESS': '退款成功',
  'REFUND.ABNORMAL': '退款异常',
  'REFUND.CLOSED': '退款关闭',
};

export interface BuildNotificationInput {
  eventType: NotificationEventType | string;
  /** The plaintext resource: a transaction or a refund, as WeChat Pay describes it. */
  resource: object;
  /** The merchant's APIv3 key (32 bytes). */
  apiV3Key: string;
  /** Default: `transaction` for `TRANSACTION.*`, `refund` otherwise (also the default `associated_data`). */
  originalType?: string;
  associatedData?: string;
  /** Default: a new UUID. */
  id?: string;
  createTime?: Date;
  summary?: string;
  /** AEAD nonce; default 12 random characters as WeChat uses. */
  nonce?: string;
}

export interface BuiltNotification {
  id: string;
  body: NotificationBody;
  /** The exact bytes to send (and to sign). */
  rawBody: string;
}

export function buildNotification(input: BuildNotificationInput): BuiltNotification {
  const originalType = input.originalType ?? (input.eventType.startsWith('TRANSACTION.') ? 'transaction' : 'refund');
  const associatedData = input.associatedData ?? originalType;
  const nonce = input.nonce ?? generateNonce(12);
  const id = input.id ?? randomUUID();
  const body: NotificationBody = {
    id,
    create_time: formatRfc3339China(input.createTime ?? new Date()),
    resource_type: 'encrypt-resource',
    event_type: input.eventType,
    summary: input.summary ?? SUMMARIES[input.eventType as NotificationEventType] ?? input.eventType,
    resource: {
      original_type: originalType,
      algorithm: 'AEAD_AES_256_GCM',
      ciphertext: aesGcmEncrypt(JSON.stringify(input.resource), input.apiV3Key, nonce, associatedData),
      associated_data: associatedData,
      nonce,
    },
  };
  return { id, body, rawBody: JSON.stringify(body) };
}

export interface NotificationSigner {
  privateKey: KeyLike;
  /** `PUB_KEY_ID_…`, sent as `Wechatpay-Serial`. */
  publicKeyId: string;
}

export interface SignOverrides {
  /** Unix seconds; default now. */
  timestamp?: number | string;
  nonce?: string;
  /** Replaces the computed signature (e.g. `WECHATPAY/SIGNTEST/…`). */
  signature?: string;
  serial?: string;
}

/**
 * Headers WeChat Pay sends with a notification (lower-case names, as Node presents them), signed over `rawBody`.
 */
export function signNotification(rawBody: string | Buffer, signer: NotificationSigner, o: SignOverrides = {}): Record<string, string> {
  const timestamp = String(o.timestamp ?? unixTimestamp());
  const nonce = o.nonce ?? generateNonce(32);
  const signature = o.signature ?? rsaSign(buildResponseMessage(timestamp, nonce, rawBody), signer.privateKey);
  return {
    'content-type': 'application/json',
    'wechatpay-timestamp': timestamp,
    'wechatpay-nonce': nonce,
    'wechatpay-signature': signature,
    'wechatpay-serial': o.serial ?? signer.publicKeyId,
    'wechatpay-signature-type': AUTH_SCHEME,
    'request-id': randomUUID(),
  };
}
