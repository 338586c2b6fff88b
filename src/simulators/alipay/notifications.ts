/**
 * Alipay asynchronous notifications (异步通知, notify_type `trade_status_sync`), built and signed exactly as Alipay
 * sends them (opendocs.alipay.com/open/270/105902): a form-encoded POST in the message's `charset`, RSA2 by Alipay's
 * key over every parameter but `sign` and `sign_type`, sorted, `k=v&…`.
 *
 * These are also "the real signer" for tests: build a notification, then break whatever the test needs.
 */
import type { KeyLike } from 'node:crypto';
import { encodeForm, formatChinaDateTime, signNotifyParams } from '../../payments/providers/alipay/crypto';
import { randomDigits } from '../shared/credentials';

export interface BuildNotificationInput {
  /** Business parameters (app_id, out_trade_no, trade_status, total_amount, …); they win over the defaults. */
  params: Record<string, string>;
  /** Default: a new Alipay-looking notify_id. */
  notifyId?: string;
  /** Default: now. */
  notifyTime?: Date;
  /** Encoding of the body and the `charset` parameter. Default `utf-8`; `GBK` as older apps receive. */
  charset?: string;
}

export interface BuiltNotification {
  notifyId: string;
  /** The decoded parameters, `sign` and `sign_type` included. */
  params: Record<string, string>;
  /** The exact bytes to POST (ASCII: every other byte is percent-encoded in `charset`). */
  rawBody: string;
  headers: Record<string, string>;
}

/** `yyyyMMdd` + `00222` + 21 digits, like the notify_ids Alipay sends (34 characters). */
export function newNotifyId(now = new Date()): string {
  return `${formatChinaDateTime(now).slice(0, 10).replace(/-/g, '')}00222${randomDigits(21)}`;
}

export function buildNotification(input: BuildNotificationInput, alipayPrivateKey: KeyLike): BuiltNotification {
  const charset = input.charset ?? 'utf-8';
  const notifyId = input.params.notify_id ?? input.notifyId ?? newNotifyId();
  const params = signNotifyParams(
    {
      notify_time: formatChinaDateTime(input.notifyTime ?? new Date()),
      notify_type: 'trade_status_sync',
      notify_id: notifyId,
      charset,
      version: '1.0',
      ...input.params,
    },
    alipayPrivateKey,
  );
  return {
    notifyId,
    params,
    rawBody: encodeForm(params, charset),
    headers: { 'content-type': `application/x-www-form-urlencoded; charset=${charset}` },
  };
}
