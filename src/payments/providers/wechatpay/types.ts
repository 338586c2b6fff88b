/**
 * WeChat Pay API v3 wire shapes used by the adapter and the simulator (direct merchant, 直连商户).
 * Only the fields this service reads or the simulator writes; WeChat sends more.
 * Source: pay.weixin.qq.com/doc/v3/merchant (Native/JSAPI/H5 下单, 查询订单, 申请退款, 支付/退款结果通知).
 */

export type TradeState = 'SUCCESS' | 'REFUND' | 'NOTPAY' | 'CLOSED' | 'REVOKED' | 'USERPAYING' | 'PAYERROR';
export type TradeType = 'NATIVE' | 'JSAPI' | 'MWEB' | 'APP' | 'MICROPAY' | 'FACEPAY';
export type RefundStatus = 'SUCCESS' | 'CLOSED' | 'PROCESSING' | 'ABNORMAL';

export interface PrepayRequest {
  appid: string;
  mchid: string;
  description: string;
  out_trade_no: string;
  time_expire?: string;
  attach?: string;
  notify_url: string;
  amount: { total: number; currency?: string };
  payer?: { openid: string };
  scene_info?: { payer_client_ip: string; device_id?: string; h5_info?: { type: string } };
}

export interface Transaction {
  appid: string;
  mchid: string;
  out_trade_no: string;
  transaction_id?: string;
  trade_type?: TradeType;
  trade_state: TradeState;
  trade_state_desc: string;
  bank_type?: string;
  attach?: string;
  success_time?: string;
  payer?: { openid: string };
  amount: { total: number; payer_total?: number; currency: string; payer_currency?: string };
  promotion_detail?: unknown[];
}

export interface Refund {
  refund_id: string;
  out_refund_no: string;
  transaction_id: string;
  out_trade_no: string;
  channel: 'ORIGINAL' | 'BALANCE' | 'OTHER_BALANCE' | 'OTHER_BANKCARD';
  user_received_account: string;
  success_time?: string;
  create_time: string;
  status: RefundStatus;
  funds_account?: string;
  amount: {
    total: number;
    refund: number;
    payer_total: number;
    payer_refund: number;
    settlement_refund: number;
    settlement_total: number;
    discount_refund: number;
    currency: string;
    refund_fee?: number;
  };
  promotion_detail?: unknown[];
}

/** Plaintext of a `REFUND.*` notification resource. */
export interface RefundNotificationResource {
  mchid: string;
  out_trade_no: string;
  transaction_id: string;
  out_refund_no: string;
  refund_id: string;
  refund_status: RefundStatus;
  success_time?: string;
  user_received_account: string;
  amount: { total: number; refund: number; payer_total: number; payer_refund: number };
}

export type NotificationEventType = 'TRANSACTION.SUCCESS' | 'REFUND.SUCCESS' | 'REFUND.ABNORMAL' | 'REFUND.CLOSED';

/** A callback body as WeChat Pay POSTs it. */
export interface NotificationBody {
  id: string;
  create_time: string;
  resource_type: 'encrypt-resource';
  event_type: NotificationEventType | string;
  summary: string;
  resource: {
    original_type: 'transaction' | 'refund' | string;
    algorithm: 'AEAD_AES_256_GCM' | string;
    ciphertext: string;
    associated_data?: string;
    nonce: string;
  };
}

/** `GET /v3/bill/tradebill` answer: where to download the bill and the hash of the (uncompressed) file. */
export interface TradeBillAnswer {
  hash_type: 'SHA1' | string;
  hash_value: string;
  /** `https://api.mch.weixin.qq.com/v3/billdownload/file?token=…`, valid for 30 seconds. */
  download_url: string;
}
