/**
 * The Alipay simulator's trade bills (`bill_type=trade`), written the way Alipay writes them: a zip holding
 * `<PID>_<yyyyMMdd>_业务明细.csv` and `…_业务明细(汇总).csv`, GBK, identifiers followed by a tab, refunds as negative
 * lines carrying their out_request_no, the 合计 lines after the list. Layout: see `reconciliation/alipay-bill.ts`.
 */
import AdmZip from 'adm-zip';
import iconv from 'iconv-lite';
import { toMajorString } from '../../shared/money';
import type { BillCorruption, FaultableLine } from '../shared/bill-faults';

export interface AlipayBillLine extends FaultableLine {
  tradeNo: string;
  subject: string;
  createdAt: Date;
  /** Payment time, or refund time. */
  at: Date;
  buyer: string;
}

const HEADER =
  '支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,' +
  '支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,' +
  '退款批次号/请求号,服务费（元）,分润（元）,备注';
const SUMMARY_HEADER =
  '门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）';
const RULE = '#-----------------------------------------业务明细列表----------------------------------------';
const RULE_END = '#-----------------------------------------业务明细列表结束------------------------------------';

/** The zip a bill download answers, or its bytes as a corruption wants them. */
export function renderAlipayBillZip(pid: string, date: string, lines: readonly AlipayBillLine[], corruption: BillCorruption | null): Buffer {
  const ordered = [...lines].sort((a, b) => a.at.getTime() - b.at.getTime());
  const compact = date.replace(/-/g, '');
  const next = new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  const heading = [`#账号：[${pid}0156]`, `#起始日期：[${cnDate(date)} 00:00:00]   终止日期：[${cnDate(next)} 00:00:00]`];
  const exported = `#导出时间：[${cnDateTime(new Date())}]`;

  const totals = { trades: 0, refunds: 0, received: 0, refunded: 0 };
  const rows = ordered.map((l) => {
    const payment = l.kind === 'payment';
    const amount = payment ? yuan(l.amount) : `-${yuan(l.amount)}`;
    if (payment) {
      totals.trades++;
      totals.received += l.amount;
    } else {
      totals.refunds++;
      totals.refunded += l.amount;
    }
    const subject = l.subject.replace(/[,\r\n]/g, ' ');
    return [
      `${l.tradeNo}\t`, `${l.paymentNo}\t`, `${payment ? '交易' : '退款'}\t`, subject, time(l.createdAt), time(l.at), '\t', '\t', '\t', '\t',
      `${l.buyer}\t`, amount, amount, '0.00', '0.00', '0.00', '0.00', '0.00', '', '0.00\t', '0.00', `${payment ? '' : (l.refundNo ?? '')}\t`,
      '0.00', '0.00', subject,
    ].join(',');
  });
  const header = corruption === 'columns' ? HEADER.replace('商家实收（元）', '实收金额（元）').replace('分润（元）', '分润（元）,手续费（元）') : HEADER;
  const detail = [
    '#支付宝业务明细查询',
    ...heading,
    RULE,
    header,
    ...rows,
    RULE_END,
    `#交易合计：${totals.trades}笔，商家实收共${yuan(totals.received)}元，商家优惠共0.00元`,
    `#退款合计：${totals.refunds}笔，商家实收退款共${totals.refunded ? '-' : ''}${yuan(totals.refunded)}元，商家优惠退款共0.00元`,
    exported,
  ].join('\r\n');
  const net = yuan(Math.max(totals.received - totals.refunded, 0));
  const summary = [
    '#支付宝业务汇总查询',
    ...heading,
    SUMMARY_HEADER,
    `合计,,${totals.trades},${totals.refunds},${yuan(totals.received)},${yuan(totals.received)},0.00,0.00,0.00,0.00,0.00,${net}`,
    exported,
  ].join('\r\n');

  const encode = (text: string) => (corruption === 'encoding' ? Buffer.from(text + '\r\n', 'utf8') : iconv.encode(text + '\r\n', 'gbk'));
  const zip = new AdmZip();
  zip.addFile(`${pid}_${compact}_业务明细.csv`, encode(detail));
  zip.addFile(`${pid}_${compact}_业务明细(汇总).csv`, encode(summary));
  const bytes = zip.toBuffer();
  return corruption === 'truncate' ? bytes.subarray(0, Math.floor(bytes.length * 0.6)) : bytes;
}

const yuan = (fen: number) => toMajorString(fen);
const china = (at: Date) => new Date(at.getTime() + 8 * 3600_000).toISOString();
const time = (at: Date) => china(at).slice(0, 19).replace('T', ' ');
const cnDate = (date: string) => `${date.slice(0, 4)}年${date.slice(5, 7)}月${date.slice(8, 10)}日`;
const cnDateTime = (at: Date) => `${cnDate(china(at).slice(0, 10))} ${china(at).slice(11, 19)}`;
