/**
 * Messages UnionPay signs: synchronous answers, back notifications (form POST to `backUrl`) and front returns
 * (browser form POST to `frontUrl`). Every one carries UnionPay's signing certificate (`signPubKeyCert`, signed
 * itself), its `certId` and a `signature` over all the other fields (`signMethod=01`, ACP 5.1.0).
 *
 * These are also "the real signer" for tests: build a message, sign it, then break whatever the test needs.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { encodeForm, formatAcpTime, formatTraceTime, signFields } from '../../payments/providers/unionpay/crypto';
import {
  ACCESS_TYPE_MERCHANT,
  ACP_ENCODING,
  ACP_VERSION,
  CURRENCY_CNY,
  RespCode,
  SIGN_METHOD_RSA,
  TxnSubType,
  TxnType,
  type AcpFields,
} from '../../payments/providers/unionpay/types';
import { randomDigits } from '../shared/credentials';
import type { StoredConsume, StoredRefund } from './store';

export interface UnionPayMessageSigner {
  /** PKCS#8 PEM or a KeyObject. */
  key: string | KeyObject;
  /** PEM, sent as `signPubKeyCert`. */
  certPem: string;
  /** Decimal serial of `certPem`, sent as `certId`. */
  certId: string;
}

/** `fields` + `signPubKeyCert` + `certId` + `signature`, as UnionPay signs (blank fields dropped). */
export function signUnionPayMessage(fields: AcpFields, signer: UnionPayMessageSigner): AcpFields {
  const key = typeof signer.key === 'string' ? createPrivateKey(signer.key) : signer.key;
  return signFields({ ...fields, signPubKeyCert: signer.certPem }, key, signer.certId);
}

/** A notification POST as UnionPay sends it: form-encoded UTF-8. */
export function encodeNotification(fields: AcpFields): { body: string; headers: Record<string, string> } {
  return { body: encodeForm(fields), headers: { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' } };
}

export const RESP_MSG_SUCCESS = '成功[0000000]';

/** Fields common to every UnionPay message. */
export function baseFields(merId: string): AcpFields {
  return { version: ACP_VERSION, encoding: ACP_ENCODING, signMethod: SIGN_METHOD_RSA, accessType: ACCESS_TYPE_MERCHANT, merId };
}

/** What a processed transaction gets: `queryId` (21 digits), `traceNo`, `traceTime`, `settleDate`. */
export function newSettlement(at: Date = new Date()): { queryId: string; traceNo: string; traceTime: string; settleDate: string } {
  return {
    queryId: `${formatAcpTime(at)}${randomDigits(7)}`,
    traceNo: randomDigits(6),
    traceTime: formatTraceTime(at),
    settleDate: formatTraceTime(at).slice(0, 4),
  };
}

/** A masked card number like the ones UnionPay returns. */
export const MASKED_CARD = '6216********0018';

/** The consume (payment) result: back notification and front return fields, unsigned. */
export function consumeResultFields(tx: StoredConsume): AcpFields {
  const paid = tx.state === 'SUCCESS';
  return {
    ...baseFields(tx.merId),
    txnType: TxnType.CONSUME,
    txnSubType: tx.txnSubType,
    bizType: tx.bizType,
    channelType: tx.channelType,
    orderId: tx.orderId,
    txnTime: tx.txnTime,
    txnAmt: String(tx.txnAmt),
    currencyCode: CURRENCY_CNY,
    queryId: tx.queryId ?? '',
    traceNo: tx.traceNo ?? '',
    traceTime: tx.traceTime ?? '',
    settleAmt: paid ? String(tx.txnAmt) : '',
    settleCurrencyCode: paid ? CURRENCY_CNY : '',
    settleDate: tx.settleDate ?? '',
    accNo: MASKED_CARD,
    payCardType: '01',
    respCode: paid ? RespCode.SUCCESS : RespCode.FAILED,
    respMsg: paid ? RESP_MSG_SUCCESS : '交易失败',
  };
}

/** The refund result notification fields, unsigned. */
export function refundResultFields(r: StoredRefund): AcpFields {
  const ok = r.state === 'SUCCESS';
  return {
    ...baseFields(r.merId),
    txnType: TxnType.REFUND,
    txnSubType: TxnSubType.DEFAULT,
    bizType: r.bizType,
    channelType: r.channelType,
    orderId: r.orderId,
    origQryId: r.origQryId,
    txnTime: r.txnTime,
    txnAmt: String(r.txnAmt),
    currencyCode: CURRENCY_CNY,
    queryId: r.queryId ?? '',
    traceNo: r.traceNo ?? '',
    traceTime: r.traceTime ?? '',
    settleAmt: ok ? String(r.txnAmt) : '',
    settleCurrencyCode: ok ? CURRENCY_CNY : '',
    settleDate: r.settleDate ?? '',
    respCode: ok ? RespCode.SUCCESS : RespCode.FAILED,
    respMsg: ok ? RESP_MSG_SUCCESS : '退货失败',
  };
}
