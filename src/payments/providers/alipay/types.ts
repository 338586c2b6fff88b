/**
 * Alipay OpenAPI (gateway.do) wire shapes used by the adapter and the simulator. Only the fields this service reads
 * or the simulator writes; Alipay sends more. Amounts are yuan strings with two decimals (`"88.00"`), times China
 * time `yyyy-MM-dd HH:mm:ss`.
 * Source: opendocs.alipay.com (alipay.trade.precreate / page.pay / wap.pay / query / close / refund /
 * fastpay.refund.query, 异步通知参数).
 */

export type TradeStatus = 'WAIT_BUYER_PAY' | 'TRADE_SUCCESS' | 'TRADE_FINISHED' | 'TRADE_CLOSED';

export type ProductCode = 'FACE_TO_FACE_PAYMENT' | 'FAST_INSTANT_TRADE_PAY' | 'QUICK_WAP_WAY';

/** Every `*_response` object: `code` 10000 is success; 40004 a business failure described by `sub_code`. */
export interface CommonResponse {
  code: string;
  msg: string;
  sub_code?: string;
  sub_msg?: string;
}

/** biz_content of precreate / page.pay / wap.pay. */
export interface TradeCreateBiz {
  out_trade_no: string;
  total_amount: string;
  subject: string;
  product_code: ProductCode;
  /** Absolute expiry, China time. */
  time_expire?: string;
  /** WAP: where the cashier's "back" goes. */
  quit_url?: string;
}

export interface PrecreateResponse extends CommonResponse {
  out_trade_no: string;
  qr_code: string;
}

export interface TradeQueryResponse extends CommonResponse {
  trade_no?: string;
  out_trade_no?: string;
  buyer_logon_id?: string;
  trade_status?: TradeStatus;
  total_amount?: string;
  buyer_pay_amount?: string;
  point_amount?: string;
  invoice_amount?: string;
  receipt_amount?: string;
  /** When the buyer paid; absent while unpaid. */
  send_pay_date?: string;
  buyer_user_id?: string;
}

export interface TradeCloseResponse extends CommonResponse {
  trade_no?: string;
  out_trade_no?: string;
}

export interface RefundResponse extends CommonResponse {
  trade_no?: string;
  out_trade_no?: string;
  buyer_logon_id?: string;
  /** `Y`: money moved by this very call; `N` (e.g. a retried, already-done out_request_no): ask the refund query. */
  fund_change?: 'Y' | 'N';
  /** The trade's cumulative refunded amount (yuan), not this refund's. */
  refund_fee?: string;
  /** This request's refund amount. */
  send_back_fee?: string;
  gmt_refund_pay?: string;
  buyer_user_id?: string;
}

export interface RefundQueryResponse extends CommonResponse {
  trade_no?: string;
  out_trade_no?: string;
  out_request_no?: string;
  total_amount?: string;
  refund_amount?: string;
  /** `REFUND_SUCCESS` once done; absent for a refund Alipay does not know (or not yet done). */
  refund_status?: 'REFUND_SUCCESS';
  gmt_refund_pay?: string;
}

/** `alipay.data.dataservice.bill.downloadurl.query`: where to download the day's bill (a zip of GBK CSV, URL valid 30 s). */
export interface BillDownloadUrlResponse extends CommonResponse {
  bill_download_url?: string;
}

/**
 * Decoded parameters of an asynchronous notification (notify_type `trade_status_sync`). Refund-triggered ones also
 * carry `refund_fee` (cumulative), `gmt_refund` and `out_biz_no` (= the refund's `out_request_no`).
 */
export interface NotifyParams {
  notify_time: string;
  notify_type: string;
  notify_id: string;
  app_id: string;
  charset: string;
  version: string;
  sign_type: string;
  sign: string;
  trade_no: string;
  out_trade_no: string;
  trade_status: TradeStatus;
  total_amount: string;
  seller_id?: string;
  buyer_id?: string;
  gmt_create?: string;
  gmt_payment?: string;
  gmt_close?: string;
  gmt_refund?: string;
  refund_fee?: string;
  out_biz_no?: string;
  subject?: string;
  [key: string]: string | undefined;
}
