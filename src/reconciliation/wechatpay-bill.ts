/**
 * WeChat Pay API v3 trade bill (交易账单, `GET /v3/bill/tradebill?bill_type=ALL`), as downloaded from its
 * `download_url`: optionally gzip (`tar_type=GZIP`), UTF-8 with a BOM, one header line, one line per transaction with
 * every field prefixed by a backtick (so spreadsheets keep long numbers as text), then two summary lines (captions,
 * values). Amounts are yuan. The download is not signed: the tradebill answer's SHA1 of the uncompressed file is what
 * makes it trustworthy.
 *
 * Layout checked against WeChat Pay's published sample `bill.ALL.csv` (wechatpay-axios-plugin / wechatpay-php
 * `tests/fixtures/bill.ALL.csv`, committed here as `test/fixtures/bills/wechatpay-bill.ALL.csv`).
 *
 * Rows: 交易状态 SUCCESS is a payment (amount: 订单金额, what the payer was charged); REFUND a refund (amount:
 * 申请退款金额, what was asked back; its state in 退款状态); REVOKED a revoked payment.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { BillFormatError, makeBill, parseChinaTime, parseYuan, chinaDate, type Bill, type BillRow, type BillRowStatus } from './bill';

const PROVIDER = 'wechatpay';

/** The ALL bill's columns, in order (API v3; the v2 bill had 24, without the last three). */
export const WECHATPAY_BILL_COLUMNS = [
  '交易时间', '公众账号ID', '商户号', '特约商户号', '设备号', '微信订单号', '商户订单号', '用户标识', '交易类型', '交易状态',
  '付款银行', '货币种类', '应结订单金额', '代金券金额', '微信退款单号', '商户退款单号', '退款金额', '充值券退款金额', '退款类型',
  '退款状态', '商品名称', '商户数据包', '手续费', '费率', '订单金额', '申请退款金额', '费率备注',
] as const;

export const WECHATPAY_SUMMARY_COLUMNS = [
  '总交易单数', '应结订单总金额', '退款总金额', '充值券退款总金额', '手续费总金额', '订单总金额', '申请退款总金额',
] as const;

const REFUND_STATUS: Readonly<Record<string, BillRowStatus>> = {
  SUCCESS: 'SUCCEEDED',
  PROCESSING: 'PENDING',
  ABNORMAL: 'FAILED',
  CLOSED: 'FAILED',
  FAIL: 'FAILED',
};

export interface WechatPayBillDownload {
  /** The bytes as downloaded (gzip or plain). */
  bytes: Buffer;
  /** From the tradebill answer. */
  hashType: string;
  hashValue: string;
}

export interface WechatPayBillOptions {
  /** The day the bill was asked for: every row must fall in it. */
  date?: string;
  /** This merchant's mchid: every row must carry it. */
  mchid?: string;
}

/** Gunzips when gzip, checks the SHA1 of the uncompressed bill against the tradebill answer, then parses it. */
export function readWechatPayBill(download: WechatPayBillDownload, options: WechatPayBillOptions = {}): Bill {
  let plain = download.bytes;
  if (plain.length >= 2 && plain[0] === 0x1f && plain[1] === 0x8b) {
    try {
      plain = gunzipSync(plain);
    } catch (err) {
      throw new BillFormatError(PROVIDER, 'TRUNCATED', `the gzip file is truncated or corrupt (${(err as Error).message})`);
    }
  }
  if (download.hashType.toUpperCase() !== 'SHA1') {
    throw new BillFormatError(PROVIDER, 'MALFORMED', `unsupported hash_type ${JSON.stringify(download.hashType)} (expected SHA1)`);
  }
  const actual = createHash('sha1').update(plain).digest('hex');
  if (actual !== download.hashValue.toLowerCase()) {
    throw new BillFormatError(PROVIDER, 'HASH_MISMATCH', `SHA1 of the file is ${actual}, the tradebill answer says ${download.hashValue}`);
  }
  return parseWechatPayBill(plain, options);
}

/** Parses an uncompressed ALL trade bill. Refuses anything that is not exactly that format. */
export function parseWechatPayBill(bytes: Buffer, options: WechatPayBillOptions = {}): Bill {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new BillFormatError(PROVIDER, 'ENCODING', 'the file is not UTF-8');
  }
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (lines.length < 3) throw new BillFormatError(PROVIDER, 'TRUNCATED', `only ${lines.length} line(s): a bill has a header and two summary lines`);

  const header = lines[0]!.split(',');
  const missing = WECHATPAY_BILL_COLUMNS.filter((c) => !header.includes(c));
  const extra = header.filter((c) => !(WECHATPAY_BILL_COLUMNS as readonly string[]).includes(c));
  if (missing.length || extra.length || header.length !== WECHATPAY_BILL_COLUMNS.length) {
    throw new BillFormatError(
      PROVIDER,
      'UNEXPECTED_COLUMNS',
      `header does not match the ALL bill (missing: ${missing.join(', ') || 'none'}; unexpected: ${extra.join(', ') || 'none'})`,
    );
  }
  const col = Object.fromEntries(header.map((name, i) => [name, i])) as Record<(typeof WECHATPAY_BILL_COLUMNS)[number], number>;

  const caption = lines[lines.length - 2]!;
  if (caption !== WECHATPAY_SUMMARY_COLUMNS.join(',')) {
    throw new BillFormatError(PROVIDER, 'TRUNCATED', 'the summary lines (总交易单数,…) are missing at the end of the file');
  }
  const summary = fields(lines[lines.length - 1]!, lines.length);
  if (summary.length !== WECHATPAY_SUMMARY_COLUMNS.length) {
    throw new BillFormatError(PROVIDER, 'MALFORMED', `the summary line has ${summary.length} fields, expected ${WECHATPAY_SUMMARY_COLUMNS.length}`);
  }

  const rows: BillRow[] = [];
  const sums = { settlement: 0, refund: 0, order: 0, requested: 0 };
  for (let i = 1; i < lines.length - 2; i++) {
    const lineNo = i + 1;
    const f = fields(lines[i]!, lineNo);
    if (f.length !== WECHATPAY_BILL_COLUMNS.length) {
      throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo} has ${f.length} fields, expected ${WECHATPAY_BILL_COLUMNS.length}`);
    }
    const get = (name: (typeof WECHATPAY_BILL_COLUMNS)[number]) => f[col[name]]!;
    const yuan = (name: (typeof WECHATPAY_BILL_COLUMNS)[number]) => {
      const v = parseYuan(get(name));
      if (v === undefined || v < 0) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: ${name} ${JSON.stringify(get(name))} is not an amount`);
      return v;
    };
    const at = parseChinaTime(get('交易时间'));
    if (!at) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: 交易时间 ${JSON.stringify(get('交易时间'))} is not yyyy-MM-dd HH:mm:ss`);
    if (options.date && chinaDate(at) !== options.date) {
      throw new BillFormatError(PROVIDER, 'WRONG_DAY', `line ${lineNo} is dated ${get('交易时间')}, not on ${options.date}`);
    }
    if (options.mchid && get('商户号') !== options.mchid) {
      throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo} belongs to merchant ${get('商户号')}, not ${options.mchid}`);
    }
    const paymentNo = get('商户订单号');
    if (!paymentNo) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo} has no 商户订单号`);
    const amounts = { settlement: yuan('应结订单金额'), refund: yuan('退款金额'), order: yuan('订单金额'), requested: yuan('申请退款金额') };
    sums.settlement += amounts.settlement;
    sums.refund += amounts.refund;
    sums.order += amounts.order;
    sums.requested += amounts.requested;

    const tradeState = get('交易状态');
    const transactionId = get('微信订单号') || undefined;
    if (tradeState === 'SUCCESS' || tradeState === 'REVOKED') {
      rows.push({
        kind: 'payment',
        paymentNo,
        providerTransactionId: transactionId,
        amount: amounts.order,
        status: tradeState === 'SUCCESS' ? 'SUCCEEDED' : 'CLOSED',
        providerStatus: tradeState,
        at,
      });
    } else if (tradeState === 'REFUND') {
      const refundNo = get('商户退款单号');
      const refundState = get('退款状态');
      const status = REFUND_STATUS[refundState];
      if (!refundNo || refundNo === '0') throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: a REFUND line without 商户退款单号`);
      if (!status) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: unknown 退款状态 ${JSON.stringify(refundState)}`);
      rows.push({
        kind: 'refund',
        paymentNo,
        refundNo,
        providerTransactionId: get('微信退款单号') || transactionId,
        amount: amounts.requested,
        status,
        providerStatus: `REFUND/${refundState}`,
        at,
      });
    } else {
      throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: unknown 交易状态 ${JSON.stringify(tradeState)}`);
    }
  }

  // The summary line is the provider's own count and sums: a file cut short or altered does not add up to it.
  const count = Number(summary[0]);
  const expect = [
    ['总交易单数', rows.length, Number.isFinite(count) && /^\d+(\.0+)?$/.test(summary[0]!) ? count : undefined],
    ['应结订单总金额', sums.settlement, parseYuan(summary[1]!)],
    ['退款总金额', sums.refund, parseYuan(summary[2]!)],
    ['订单总金额', sums.order, parseYuan(summary[5]!)],
    ['申请退款总金额', sums.requested, parseYuan(summary[6]!)],
  ] as const;
  for (const [name, actual, stated] of expect) {
    if (stated === undefined) throw new BillFormatError(PROVIDER, 'MALFORMED', `summary ${name} is not a number`);
    if (actual !== stated) {
      throw new BillFormatError(PROVIDER, 'TOTALS_MISMATCH', `the lines add up to ${name} ${actual}, the summary says ${stated}`);
    }
  }
  return makeBill(PROVIDER, options.date ?? (rows[0] ? chinaDate(rows[0].at) : ''), rows);
}

/** A data or summary line: every field prefixed by a backtick, separated by commas. */
function fields(line: string, lineNo: number): string[] {
  if (!line.startsWith('`')) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo} does not start with a backtick`);
  return line.slice(1).split(',`');
}
