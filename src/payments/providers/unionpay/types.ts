/**
 * UnionPay ACP 5.1.0 wire vocabulary used by the adapter and the simulator. Sources: the official ACP Java SDK
 * (`SDKConstants`, `SDKUtil`, `CertUtil`, the `Form_6_*` demos: 6.2 front consume, 6.4 refund, 6.5 query, 二维码
 * 申码 `txnSubType=07`) as found in public ports (e.g. Javen205/IJPay `com.jpay.unionpay`).
 *
 * Every message is a flat map of string fields. Requests are sent as `application/x-www-form-urlencoded`;
 * synchronous answers come back as raw `k=v&k=v` text (values not URL-encoded, nested values wrapped in `{…}` or
 * `[…]`); notifications are form POSTs.
 */

export type AcpFields = Record<string, string>;

export const ACP_VERSION = '5.1.0';
export const ACP_ENCODING = 'UTF-8';
/** RSA certificate signing (SHA-256 in 5.1.0). `11` (SHA-256 with a shared key) and `12` (SM3) are not supported. */
export const SIGN_METHOD_RSA = '01';
/** ISO 4217 numeric for CNY. */
export const CURRENCY_CNY = '156';
/** `accessType`: a merchant connecting directly (0), as opposed to an acquirer (1) or a platform (2). */
export const ACCESS_TYPE_MERCHANT = '0';

/** `txnType` values this service uses. */
export const TxnType = {
  QUERY: '00',
  CONSUME: '01',
  REFUND: '04',
  /** File transfer (`fileTransfer.do`, the daily reconciliation file). */
  FILE_TRANSFER: '76',
} as const;

/** `txnSubType` values: `01` self-service consume; `07` apply for a consume QR code (申请消费二维码); `00` default. */
export const TxnSubType = {
  DEFAULT: '00',
  CONSUME: '01',
  QR_APPLY: '07',
} as const;

/** `bizType`: `000201` B2C gateway payment; `000000` (default / QR code payments). */
export const BizType = {
  GATEWAY: '000201',
  QR: '000000',
} as const;

/** `channelType`: `07` internet (PC), `08` mobile. */
export const ChannelType = {
  PC: '07',
  MOBILE: '08',
} as const;

/**
 * `respCode` / `origRespCode` values the service reacts to (ACP 《平台接入接口规范-第5部分-附录》; handling as in the
 * official demos). Any other code of a query's original transaction is a failure.
 */
export const RespCode = {
  SUCCESS: '00',
  /** 有缺陷的成功: the demos count it as success. */
  PARTIAL_SUCCESS: 'A6',
  FAILED: '01',
  /** 交易通讯超时，请发起查询交易 */
  TIMEOUT: '03',
  /** 交易状态未明，请查询对账结果 */
  UNKNOWN: '04',
  /** 交易已受理，请稍后查询交易结果 */
  ACCEPTED: '05',
  FORMAT_ERROR: '10',
  SIGNATURE_ERROR: '11',
  DUPLICATE: '12',
  MISSING_FIELD: '13',
  /** 查无此交易 */
  NOT_FOUND: '34',
  /** 原交易不存在或状态不正确 */
  ORIGINAL_INVALID: '35',
  /** 与原交易信息不符 (e.g. a refund beyond what remains) */
  ORIGINAL_MISMATCH: '36',
  /** 文件不存在 (fileTransfer.do: no file for that settle date) */
  FILE_NOT_FOUND: '98',
} as const;

/** Codes that mean "the outcome is not known yet: query later". */
export const PENDING_CODES: ReadonlySet<string> = new Set([RespCode.TIMEOUT, RespCode.UNKNOWN, RespCode.ACCEPTED]);
/** Codes that mean the transaction succeeded. */
export const SUCCESS_CODES: ReadonlySet<string> = new Set([RespCode.SUCCESS, RespCode.PARTIAL_SUCCESS]);

/** `orderId`: 8 to 40 letters and digits (no `-` or `_`). */
export const ORDER_ID_PATTERN = /^[0-9A-Za-z]{8,40}$/;
/** `txnTime` and `payTimeout`: China time `YYYYMMDDhhmmss`. */
export const ACP_TIME_PATTERN = /^\d{14}$/;
/** `queryId`: UnionPay's transaction serial number, 21 digits. */
export const QUERY_ID_PATTERN = /^\d{21}$/;
