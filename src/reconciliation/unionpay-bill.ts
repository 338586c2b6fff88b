/**
 * UnionPay online gateway reconciliation file (ACP 5.1.0 file transfer, `fileTransfer.do`, `txnType=76`,
 * `fileType=00`): the signed answer's `fileContent` is base64 of the zlib-deflated zip (the official SDK's
 * `SDKUtil.deCodeFileContent`: base64 decode, then `Inflater`). The zip holds, among others, the merchant's general
 * transaction file `INN<yyMMdd>88ZM_<merId>` (ZM): GBK, one fixed-width line per cleared transaction, fields padded
 * to their widths and separated by one space (《全渠道平台接入接口规范 第3部分 文件接口》 6.1; the widths as in the
 * official SDK's `SDKUtil.parseZMFile`). Amounts are fen, zero-padded.
 *
 * Lines: 交易代码 `S22` is a consume (payment; its 商户订单号 is the paymentNo), `S30` a refund (退货; its 商户订单号
 * is the refundNo and 原交易查询流水号 the payment's queryId). A ZM file lists successful transactions only. It has no
 * summary line: its integrity comes from UnionPay's signature over `fileContent`, checked by the adapter's client,
 * and the archive's own CRCs.
 */
import { inflateSync } from 'node:zlib';
import AdmZip from 'adm-zip';
import iconv from 'iconv-lite';
import { BillFormatError, chinaDate, makeBill, type Bill, type BillRow } from './bill';

const PROVIDER = 'unionpay';

/** The ZM file's fields in order, with their widths in bytes. */
export const UNIONPAY_ZM_FIELDS: ReadonlyArray<readonly [name: string, width: number]> = [
  ['交易代码', 3], ['代理机构标识码', 11], ['发送机构标识码', 11], ['系统跟踪号', 6], ['交易传输时间', 10], ['帐号', 19],
  ['交易金额', 12], ['商户类别', 4], ['终端类型', 2], ['查询流水号', 21], ['支付方式（旧）', 2], ['商户订单号', 32],
  ['支付卡类型', 2], ['原始交易的系统跟踪号', 6], ['原始交易日期时间', 10], ['商户手续费', 13], ['结算金额', 13],
  ['支付方式', 4], ['集团商户代码', 15], ['交易类型', 2], ['交易子类', 2], ['业务类型', 6], ['帐号类型', 2], ['账单类型', 4],
  ['账单号码', 32], ['交互方式', 1], ['原交易查询流水号', 21], ['商户代码', 15], ['分账入账方式', 1], ['二级商户代码', 15],
  ['二级商户简称', 32], ['二级商户分账入账金额', 13], ['清算净额', 13], ['终端号', 8], ['商户自定义域', 32], ['优惠金额', 13],
  ['发票金额', 13], ['分期付款附加手续费', 12], ['分期付款期数', 2], ['交易介质', 1], ['原始交易订单号', 32], ['保留使用', 98],
];

/** Bytes of one ZM line (fields plus one space between each two). */
export const UNIONPAY_ZM_WIDTH = UNIONPAY_ZM_FIELDS.reduce((sum, [, w]) => sum + w, 0) + UNIONPAY_ZM_FIELDS.length - 1;

export const ZM_CONSUME = 'S22';
export const ZM_REFUND = 'S30';

export interface UnionPayBillOptions {
  /** The China day asked for (`settleDate` is its MMDD): every line must fall in it. */
  date: string;
  /** This merchant's merId: every line must carry it. */
  merId?: string;
}

/** `fileContent` of a fileTransfer.do answer → inflate → zip → the ZM file → rows. */
export function readUnionPayFileContent(fileContent: string, options: UnionPayBillOptions): Bill {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(fileContent)) throw new BillFormatError(PROVIDER, 'MALFORMED', 'fileContent is not base64');
  let zipBytes: Buffer;
  try {
    zipBytes = inflateSync(Buffer.from(fileContent, 'base64'));
  } catch (err) {
    throw new BillFormatError(PROVIDER, 'TRUNCATED', `fileContent does not inflate: truncated or corrupt (${(err as Error).message})`);
  }
  let entries: AdmZip.IZipEntry[];
  try {
    entries = new AdmZip(zipBytes).getEntries();
  } catch (err) {
    throw new BillFormatError(PROVIDER, 'TRUNCATED', `not a readable zip archive, truncated or corrupt (${(err as Error).message})`);
  }
  const zm = entries.filter((e) => /^INN\d{6}\d{2}ZM_[0-9A-Za-z]+$/.test(e.entryName.split('/').pop() ?? ''));
  if (zm.length !== 1) {
    throw new BillFormatError(PROVIDER, 'MALFORMED', `expected one INN…ZM_<merId> file in the archive, found ${zm.length} (of ${entries.length} entries)`);
  }
  let data: Buffer;
  try {
    data = zm[0]!.getData();
  } catch (err) {
    throw new BillFormatError(PROVIDER, 'TRUNCATED', `${zm[0]!.entryName} cannot be read (${(err as Error).message})`);
  }
  return parseUnionPayZmFile(data, options);
}

/** Parses a ZM file (GBK bytes). */
export function parseUnionPayZmFile(bytes: Buffer, options: UnionPayBillOptions): Bill {
  checkEncoding(bytes);
  // Fixed widths are bytes: slice the latin1 view (one char per byte), decode text fields as GBK.
  const lines = bytes.toString('latin1').split(/\r?\n/);
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const year = Number(options.date.slice(0, 4));
  const rows: BillRow[] = [];
  const paymentByQueryId = new Map<string, string>();
  const refunds: Array<{ row: BillRow; origQryId: string }> = [];

  lines.forEach((line, i) => {
    const lineNo = i + 1;
    if (line.length !== UNIONPAY_ZM_WIDTH) {
      if (i === lines.length - 1 && line.length < UNIONPAY_ZM_WIDTH) {
        throw new BillFormatError(PROVIDER, 'TRUNCATED', `the last line is ${line.length} bytes, a ZM line is ${UNIONPAY_ZM_WIDTH}: the file is cut short`);
      }
      throw new BillFormatError(PROVIDER, 'UNEXPECTED_COLUMNS', `line ${lineNo} is ${line.length} bytes wide, a ZM line is ${UNIONPAY_ZM_WIDTH}: not the ZM layout`);
    }
    const f: Record<string, string> = {};
    let at = 0;
    for (const [name, width] of UNIONPAY_ZM_FIELDS) {
      if (at > 0 && line[at - 1] !== ' ') throw new BillFormatError(PROVIDER, 'UNEXPECTED_COLUMNS', `line ${lineNo}: no separator before ${name}`);
      f[name] = iconv.decode(Buffer.from(line.slice(at, at + width), 'latin1'), 'gbk').trim();
      at += width + 1;
    }
    const code = f['交易代码']!;
    if (code !== ZM_CONSUME && code !== ZM_REFUND) {
      throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: 交易代码 ${JSON.stringify(code)} is neither a consume (S22) nor a refund (S30)`);
    }
    if (!/^\d{12}$/.test(f['交易金额']!)) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: 交易金额 ${JSON.stringify(f['交易金额'])} is not 12 digits`);
    if (options.merId && f['商户代码'] !== options.merId) {
      throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo} belongs to merchant ${f['商户代码']}, not ${options.merId}`);
    }
    const when = traceTime(f['交易传输时间']!, year, options.date);
    if (!when) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo}: 交易传输时间 ${JSON.stringify(f['交易传输时间'])} is not MMDDhhmmss`);
    if (chinaDate(when) !== options.date) throw new BillFormatError(PROVIDER, 'WRONG_DAY', `line ${lineNo} is dated ${f['交易传输时间']}, not on ${options.date}`);
    const orderId = f['商户订单号']!;
    if (!orderId) throw new BillFormatError(PROVIDER, 'MALFORMED', `line ${lineNo} has no 商户订单号`);
    const amount = Number(f['交易金额']);
    const queryId = f['查询流水号'] || undefined;
    if (code === ZM_CONSUME) {
      rows.push({ kind: 'payment', paymentNo: orderId, providerTransactionId: queryId, amount, status: 'SUCCEEDED', providerStatus: code, at: when });
      if (queryId) paymentByQueryId.set(queryId, orderId);
    } else {
      const row: BillRow = { kind: 'refund', paymentNo: '', refundNo: orderId, providerTransactionId: queryId, amount, status: 'SUCCEEDED', providerStatus: code, at: when };
      rows.push(row);
      refunds.push({ row, origQryId: f['原交易查询流水号']! });
    }
  });
  // A refund names its payment by UnionPay's queryId; the payment's own number is known when it is in the same file.
  for (const { row, origQryId } of refunds) row.paymentNo = paymentByQueryId.get(origQryId) ?? '';
  return makeBill(PROVIDER, options.date, rows);
}

/** `MMDDhhmmss` China time in the year of the settle day (a December line in a January file is the year before). */
function traceTime(s: string, year: number, date: string): Date | undefined {
  const m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (!m) return undefined;
  const y = Number(m[1]) > Number(date.slice(5, 7)) ? year - 1 : year;
  const text = `${y}-${m[1]}-${m[2]}T${m[3]}:${m[4]}:${m[5]}+08:00`;
  const at = new Date(text);
  return Number.isNaN(at.getTime()) || chinaDate(at).slice(5) !== `${m[1]}-${m[2]}` ? undefined : at;
}

/** GBK (or plain ASCII) it must be; UTF-8 text is refused with that reason. */
function checkEncoding(bytes: Buffer): void {
  let utf8: string | undefined;
  try {
    utf8 = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    utf8 = undefined;
  }
  if (utf8 !== undefined && /[^\x00-\x7f]/.test(utf8)) throw new BillFormatError(PROVIDER, 'ENCODING', 'the ZM file is UTF-8; UnionPay files are GBK');
  if (iconv.decode(bytes, 'gbk').includes('\ufffd')) throw new BillFormatError(PROVIDER, 'ENCODING', 'the ZM file is not valid GBK');
}
