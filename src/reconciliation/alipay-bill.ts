/**
 * Alipay trade bill (`alipay.data.dataservice.bill.downloadurl.query`, `bill_type=trade`), as downloaded from its
 * `bill_download_url`: a zip holding GBK-encoded CSV files, `<PID>_<yyyyMMdd>_业务明细.csv` (one line per payment and
 * refund) and `…_业务明细(汇总).csv` (per store). The detail file:
 *
 *     #支付宝业务明细查询
 *     #账号：[20880211096256330156]
 *     #起始日期：[2019年09月16日 00:00:00]   终止日期：[2019年09月17日 00:00:00]
 *     #-----------------------------------------业务明细列表----------------------------------------
 *     支付宝交易号,商户订单号,业务类型,…,订单金额（元）,商家实收（元）,…,退款批次号/请求号,服务费（元）,分润（元）,备注
 *     2019091622001458860515315453\t,service_1568601259302\t,交易\t,…,0.01,0.01,…
 *     2019091622001458860515315453\t,service_1568601259302\t,退款\t,…,-0.01,-0.01,…,re_test_1568602607356\t,…
 *     #-----------------------------------------业务明细列表结束------------------------------------
 *     #交易合计：6笔，商家实收共0.06元，商家优惠共0.00元
 *     #退款合计：4笔，商家实收退款共-0.04元，商家优惠退款共0.00元
 *     #导出时间：[2019年09月17日 05:46:49]
 *
 * Identifiers are followed by a tab (so spreadsheets keep them as text); refund lines carry negative amounts and the
 * refund's `out_request_no`. Every line of the bill is a completed payment or refund. The zip's own CRCs and the
 * 合计 lines are what make the download trustworthy (Alipay publishes no hash).
 */
import AdmZip from 'adm-zip';
import iconv from 'iconv-lite';
import { BillFormatError, chinaDate, makeBill, parseChinaTime, parseYuan, type Bill, type BillRow } from './bill';

const PROVIDER = 'alipay';

export const ALIPAY_BILL_COLUMNS = [
  '支付宝交易号', '商户订单号', '业务类型', '商品名称', '创建时间', '完成时间', '门店编号', '门店名称', '操作员', '终端号',
  '对方账户', '订单金额（元）', '商家实收（元）', '支付宝红包（元）', '集分宝（元）', '支付宝优惠（元）', '商家优惠（元）',
  '券核销金额（元）', '券名称', '商家红包消费金额（元）', '卡消费金额（元）', '退款批次号/请求号', '服务费（元）', '分润（元）', '备注',
] as const;

export const ALIPAY_DETAIL_TITLE = '#支付宝业务明细查询';
export const ALIPAY_SUMMARY_TITLE = '#支付宝业务汇总查询';
const LIST_START = /^#-+业务明细列表-+$/;
const LIST_END = /^#-+业务明细列表结束-+$/;

export interface AlipayBillOptions {
  /** The day the bill was asked for: its 起始日期 must be that day. */
  date?: string;
}

/** Opens the zip, finds the detail CSV (by its title line, whatever the archive calls it), decodes GBK and parses it. */
export function readAlipayBillZip(bytes: Buffer, options: AlipayBillOptions = {}): Bill {
  let entries: AdmZip.IZipEntry[];
  try {
    entries = new AdmZip(bytes).getEntries();
  } catch (err) {
    throw new BillFormatError(PROVIDER, 'TRUNCATED', `not a readable zip archive, truncated or corrupt (${(err as Error).message})`);
  }
  const details: Buffer[] = [];
  for (const entry of entries) {
    if (entry.isDirectory) continue;
    let data: Buffer;
    try {
      data = entry.getData();
    } catch (err) {
      throw new BillFormatError(PROVIDER, 'TRUNCATED', `zip entry ${entry.entryName} cannot be read (${(err as Error).message})`);
    }
    if (decodeGbk(data).startsWith(ALIPAY_DETAIL_TITLE)) details.push(data);
    else if (!decodeGbk(data).startsWith(ALIPAY_SUMMARY_TITLE)) checkEncoding(data);
  }
  if (details.length !== 1) {
    throw new BillFormatError(PROVIDER, 'MALFORMED', `expected one 业务明细 CSV in the zip, found ${details.length} (of ${entries.length} entries)`);
  }
  return parseAlipayBillCsv(details[0]!, options);
}

/** Parses the 业务明细 CSV (GBK bytes). */
export function parseAlipayBillCsv(bytes: Buffer, options: AlipayBillOptions = {}): Bill {
  checkEncoding(bytes);
  const lines = decodeGbk(bytes).split(/\r?\n/);
  if (lines[0]?.trim() !== ALIPAY_DETAIL_TITLE) throw new BillFormatError(PROVIDER, 'MALFORMED', `the first line is not ${ALIPAY_DETAIL_TITLE}`);

  const period = lines.find((l) => l.startsWith('#起始日期'));
  const start = period && /起始日期：\[(\d{4})年(\d{2})月(\d{2})日/.exec(period);
  if (!start) throw new BillFormatError(PROVIDER, 'MALFORMED', 'no #起始日期 line');
  const billDate = `${start[1]}-${start[2]}-${start[3]}`;
  if (options.date && billDate !== options.date) {
    throw new BillFormatError(PROVIDER, 'WRONG_DAY', `the bill starts on ${billDate}, not ${options.date}`);
  }

  const startAt = lines.findIndex((l) => LIST_START.test(l.trim()));
  if (startAt < 0) throw new BillFormatError(PROVIDER, 'MALFORMED', 'no 业务明细列表 marker');
  const endAt = lines.findIndex((l, i) => i > startAt && LIST_END.test(l.trim()));
  if (endAt < 0) throw new BillFormatError(PROVIDER, 'TRUNCATED', 'the 业务明细列表结束 marker is missing: the file is cut short');

  const header = cells(lines[startAt + 1] ?? '');
  const missing = ALIPAY_BILL_COLUMNS.filter((c) => !header.includes(c));
  const extra = header.filter((c) => !(ALIPAY_BILL_COLUMNS as readonly string[]).includes(c));
  if (missing.length || extra.length || header.length !== ALIPAY_BILL_COLUMNS.length) {
    throw new BillFormatError(
      PROVIDER,
      'UNEXPECTED_COLUMNS',
      `header does not match the trade bill (missing: ${missing.join(', ') || 'none'}; unexpected: ${extra.join(', ') || 'none'})`,
    );
  }
  const col = Object.fromEntries(header.map((name, i) => [name, i])) as Record<(typeof ALIPAY_BILL_COLUMNS)[number], number>;

  const rows: BillRow[] = [];
  const received = { trade: 0, refund: 0 };
  const counts = { trade: 0, refund: 0 };
  for (let i = startAt + 2; i < endAt; i++) {
    const lineNo = i + 1;
    if (lines[i]!.trim() === '') continue;
    const f = cells(lines[i]!);
    if (f.length !== header.length) {
      throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo} has ${f.length} fields, expected ${header.length}`);
    }
    const get = (name: (typeof ALIPAY_BILL_COLUMNS)[number]) => f[col[name]]!;
    const yuan = (name: (typeof ALIPAY_BILL_COLUMNS)[number]) => {
      const v = parseYuan(get(name));
      if (v === undefined) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: ${name} ${JSON.stringify(get(name))} is not an amount`);
      return v;
    };
    const at = parseChinaTime(get('完成时间'));
    if (!at) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: 完成时间 ${JSON.stringify(get('完成时间'))} is not yyyy-MM-dd HH:mm:ss`);
    if (chinaDate(at) !== billDate) throw new BillFormatError(PROVIDER, 'WRONG_DAY', `line ${lineNo} completed on ${get('完成时间')}, outside ${billDate}`);
    const paymentNo = get('商户订单号');
    if (!paymentNo) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo} has no 商户订单号`);
    const amount = yuan('订单金额（元）');
    const net = yuan('商家实收（元）');
    const type = get('业务类型');
    if (type === '交易') {
      if (amount < 0) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: a 交易 line with a negative amount`);
      counts.trade++;
      received.trade += net;
      rows.push({ kind: 'payment', paymentNo, providerTransactionId: get('支付宝交易号') || undefined, amount, status: 'SUCCEEDED', providerStatus: type, at });
    } else if (type === '退款') {
      if (amount > 0) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: a 退款 line with a positive amount`);
      const refundNo = get('退款批次号/请求号');
      if (!refundNo) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: a 退款 line without 退款批次号/请求号`);
      counts.refund++;
      received.refund += net;
      rows.push({
        kind: 'refund',
        paymentNo,
        refundNo,
        providerTransactionId: get('支付宝交易号') || undefined,
        amount: -amount,
        status: 'SUCCEEDED',
        providerStatus: type,
        at,
      });
    } else {
      throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: unknown 业务类型 ${JSON.stringify(type)}`);
    }
  }

  // The 合计 lines are Alipay's own counts and sums of 商家实收: a file cut short or altered does not add up to them.
  const trailer = lines.slice(endAt + 1).join('\n');
  const trade = /#交易合计：(\d+)笔(?:，商家实收共(-?[\d.]+)元)?/.exec(trailer);
  const refund = /#退款合计：(\d+)笔(?:，商家实收退款共(-?[\d.]+)元)?/.exec(trailer) ?? /退款合计：(\d+)笔/.exec(trailer);
  if (!trade || !refund) throw new BillFormatError(PROVIDER, 'TRUNCATED', 'the #交易合计 / #退款合计 lines are missing');
  const checks = [
    ['交易合计 (笔)', counts.trade, Number(trade[1])],
    ['退款合计 (笔)', counts.refund, Number(refund[1])],
    ...(trade[2] !== undefined ? [['商家实收共', received.trade, parseYuan(trade[2])] as const] : []),
    ...(refund[2] !== undefined ? [['商家实收退款共', received.refund, parseYuan(refund[2])] as const] : []),
  ] as const;
  for (const [name, actual, stated] of checks) {
    if (stated === undefined || actual !== stated) {
      throw new BillFormatError(PROVIDER, 'TOTALS_MISMATCH', `the lines add up to ${name} ${actual}, the bill says ${String(stated)}`);
    }
  }
  return makeBill(PROVIDER, billDate, rows);
}

function decodeGbk(bytes: Buffer): string {
  return iconv.decode(bytes, 'gbk');
}

/** GBK it must be: UTF-8 text (or bytes GBK cannot decode) is refused with that reason, not as an unknown layout. */
function checkEncoding(bytes: Buffer): void {
  let utf8: string | undefined;
  try {
    utf8 = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    utf8 = undefined;
  }
  if (utf8 !== undefined && /[^\x00-\x7f]/.test(utf8)) {
    throw new BillFormatError(PROVIDER, 'ENCODING', 'the CSV is UTF-8; Alipay bills are GBK');
  }
  if (decodeGbk(bytes).includes('\ufffd')) throw new BillFormatError(PROVIDER, 'ENCODING', 'the CSV is not valid GBK');
}

/** CSV cells with the tab padding Alipay adds after identifiers removed. Alipay does not quote fields. */
function cells(line: string): string[] {
  return line.split(',').map((c) => c.replace(/\t/g, '').trim());
}
