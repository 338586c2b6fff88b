/**
 * The WeChat Pay simulator's trade bills (交易账单, bill_type ALL), written the way WeChat Pay writes them: UTF-8 with
 * a BOM, the 27-column header, every field prefixed by a backtick, amounts in yuan, then the two summary lines.
 * Layout: WeChat Pay's published sample `bill.ALL.csv` (see test/fixtures/bills/README.md).
 */
import iconv from 'iconv-lite';
import { toMajorString } from '../../shared/money';
import type { BillCorruption, FaultableLine } from '../shared/bill-faults';

export interface WechatBillLine extends FaultableLine {
  /** Success time (payments) or refund time, China time when written. */
  at: Date;
  appid: string;
  mchid: string;
  transactionId: string;
  refundId?: string;
  openid: string;
  tradeType: string;
  description: string;
  /** Payments: 交易状态 (`SUCCESS`, `REVOKED`); refunds: 退款状态 (`SUCCESS`, `PROCESSING`, `ABNORMAL`). */
  status: string;
}

export const BILL_HEADER =
  '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,' +
  '微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注';
export const BILL_SUMMARY_HEADER = '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额';

/** The simulator's fee: 0.6 % of the order amount, written with five decimals of a yuan. */
const FEE_RATE = '0.60%';
const feeUnits = (fen: number) => fen * 6; // fen × 0.006 in units of 0.00001 yuan

/** The bill text (uncompressed), or its bytes as a corruption wants them. */
export function renderWechatBill(lines: readonly WechatBillLine[], corruption: BillCorruption | null): Buffer {
  const ordered = [...lines].sort((a, b) => a.at.getTime() - b.at.getTime());
  const sums = { settlement: 0, refund: 0, fee: 0, order: 0, requested: 0 };
  const out: string[] = [corruption === 'columns' ? BILL_HEADER.replace('费率备注', '备注').replace('交易类型', '支付场景') : BILL_HEADER];
  for (const l of ordered) {
    const payment = l.kind === 'payment';
    const settlement = payment ? l.amount : 0;
    const fee = payment ? feeUnits(l.amount) : 0;
    sums.settlement += settlement;
    sums.fee += fee;
    sums.order += payment ? l.amount : 0;
    sums.refund += payment ? 0 : l.amount;
    sums.requested += payment ? 0 : l.amount;
    out.push(
      line([
        chinaTime(l.at),
        l.appid,
        l.mchid,
        '0',
        '',
        l.transactionId,
        l.paymentNo,
        l.openid,
        l.tradeType,
        payment ? l.status : 'REFUND',
        'OTHERS',
        'CNY',
        yuan(settlement),
        '0.00',
        payment ? '0' : (l.refundId ?? ''),
        payment ? '0' : (l.refundNo ?? ''),
        payment ? '0.00' : yuan(l.amount),
        '0.00',
        payment ? '' : 'ORIGINAL',
        payment ? '' : l.status,
        l.description.replace(/[\r\n`,]/g, ' '),
        '',
        fee5(fee),
        FEE_RATE,
        payment ? yuan(l.amount) : '0.00',
        payment ? '0.00' : yuan(l.amount),
        '',
      ]),
    );
  }
  out.push(BILL_SUMMARY_HEADER);
  out.push(line([String(ordered.length), yuan(sums.settlement), yuan(sums.refund), '0.00', fee5(sums.fee), yuan(sums.order), yuan(sums.requested)]));
  const text = '\ufeff' + out.join('\r\n') + '\r\n';
  return corruption === 'encoding' ? iconv.encode(text.slice(1), 'gbk') : Buffer.from(text, 'utf8');
}

const line = (fields: string[]) => fields.map((f) => '`' + f).join(',');
const yuan = (fen: number) => toMajorString(fen);
const fee5 = (units: number) => {
  const s = String(units).padStart(6, '0');
  return `${s.slice(0, -5)}.${s.slice(-5)}`;
};
const chinaTime = (at: Date) => new Date(at.getTime() + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');
