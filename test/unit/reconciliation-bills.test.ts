import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import AdmZip from 'adm-zip';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { readAlipayBillZip } from '../../src/reconciliation/alipay-bill';
import { BillFormatError, type Bill } from '../../src/reconciliation/bill';
import { stripeBillFromBalanceTransactions } from '../../src/reconciliation/stripe-bill';
import { parseUnionPayZmFile, readUnionPayFileContent, UNIONPAY_ZM_WIDTH } from '../../src/reconciliation/unionpay-bill';
import { parseWechatPayBill, readWechatPayBill } from '../../src/reconciliation/wechatpay-bill';

const fixture = (name: string) => readFileSync(join(__dirname, '../fixtures/bills', name));
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

/** The reason a parse is refused with (and that it is a BillFormatError at all). */
function refusal(parse: () => unknown): string {
  try {
    parse();
  } catch (err) {
    expect(err).toBeInstanceOf(BillFormatError);
    return (err as BillFormatError).reason;
  }
  throw new Error('the bill was accepted');
}

describe('WeChat Pay trade bill (the published bill.ALL.csv sample)', () => {
  const sample = fixture('wechatpay-bill.ALL.csv');
  const text = sample.toString('utf8');

  it('reads every line: 31 payments and 14 refunds, amounts in fen, China times', () => {
    const bill = parseWechatPayBill(sample, { date: '2019-02-19', mchid: '1921000401' });
    expect(bill.rows).toHaveLength(45);
    expect(bill.totals).toEqual({ paymentCount: 31, paymentAmount: 47, refundCount: 14, refundAmount: 14 });
    expect(bill.rows.find((r) => r.paymentNo === 'autotest_20190219015232_89201')).toEqual({
      kind: 'payment',
      paymentNo: 'autotest_20190219015232_89201',
      providerTransactionId: '4200000263201902167700134902',
      amount: 3,
      status: 'SUCCEEDED',
      providerStatus: 'SUCCESS',
      at: new Date('2019-02-19T01:52:32+08:00'),
    });
    expect(bill.rows.find((r) => r.refundNo === 'REF4200000263201902167700963919')).toMatchObject({
      kind: 'refund',
      paymentNo: 'autotest_20190216081946_82335',
      providerTransactionId: '50000709672019011908420787722',
      amount: 1,
      status: 'SUCCEEDED',
      providerStatus: 'REFUND/SUCCESS',
    });
  });

  it('checks the SHA1 of the uncompressed file and reads a gzip download', () => {
    const bill = readWechatPayBill({ bytes: gzipSync(sample), hashType: 'SHA1', hashValue: sha1(sample).toUpperCase() });
    expect(bill.rows).toHaveLength(45);
  });

  it('refuses a hash mismatch', () => {
    expect(refusal(() => readWechatPayBill({ bytes: gzipSync(sample), hashType: 'SHA1', hashValue: sha1(Buffer.from('other')) }))).toBe('HASH_MISMATCH');
  });

  it('refuses a truncated gzip download', () => {
    const gz = gzipSync(sample);
    expect(refusal(() => readWechatPayBill({ bytes: gz.subarray(0, gz.length - 40), hashType: 'SHA1', hashValue: sha1(sample) }))).toBe('TRUNCATED');
  });

  it('refuses a plain file cut before its summary lines', () => {
    const cut = Buffer.from(text.slice(0, text.indexOf('总交易单数')), 'utf8');
    expect(refusal(() => parseWechatPayBill(cut))).toBe('TRUNCATED');
  });

  it('refuses unexpected columns', () => {
    expect(refusal(() => parseWechatPayBill(Buffer.from(text.replace('费率备注', '备注'), 'utf8')))).toBe('UNEXPECTED_COLUMNS');
  });

  it('refuses a bill that is not UTF-8 (GBK)', () => {
    expect(refusal(() => parseWechatPayBill(iconv.encode(text.replace(/^\ufeff/, ''), 'gbk')))).toBe('ENCODING');
  });

  it('refuses lines that do not add up to the summary (a line removed)', () => {
    const lines = text.split('\n');
    lines.splice(3, 1);
    expect(refusal(() => parseWechatPayBill(Buffer.from(lines.join('\n'), 'utf8')))).toBe('TOTALS_MISMATCH');
  });

  it('refuses a line with a field missing, and a bill of another day', () => {
    const lines = text.split('\n');
    lines[2] = lines[2]!.replace(',`0.00,`0.01,`', ',`0.00,`');
    expect(refusal(() => parseWechatPayBill(Buffer.from(lines.join('\n'), 'utf8')))).toBe('MALFORMED');
    expect(refusal(() => parseWechatPayBill(sample, { date: '2019-02-20' }))).toBe('WRONG_DAY');
  });
});

describe('Alipay trade bill (zip of GBK CSV)', () => {
  const sample = fixture('alipay-bill.20261125.csv.zip');
  const entries = new AdmZip(sample).getEntries();
  const detailEntry = entries.find((e) => iconv.decode(e.getData(), 'gbk').startsWith('#支付宝业务明细查询'))!;
  const detail = iconv.decode(detailEntry.getData(), 'gbk');
  /** The sample zip with its detail CSV replaced by `csv` (encoded as given). */
  const rezip = (csv: Buffer) => {
    const zip = new AdmZip();
    for (const e of entries) zip.addFile(e.entryName, e === detailEntry ? csv : e.getData());
    return zip.toBuffer();
  };

  it('reads payments and refunds (negative lines with their request number), amounts in fen', () => {
    const bill: Bill = readAlipayBillZip(sample, { date: '2026-11-25' });
    expect(bill.date).toBe('2026-11-25');
    expect(bill.rows).toHaveLength(4);
    expect(bill.totals).toEqual({ paymentCount: 3, paymentAmount: 10800 + 1 + 29990, refundCount: 1, refundAmount: 2000 });
    expect(bill.rows[0]).toEqual({
      kind: 'payment',
      paymentNo: 'P202611250930120000000001',
      providerTransactionId: '2026112522001411111111111111',
      amount: 10800,
      status: 'SUCCEEDED',
      providerStatus: '交易',
      at: new Date('2026-11-25T09:30:40+08:00'),
    });
    expect(bill.rows[2]).toMatchObject({ kind: 'refund', paymentNo: 'P202611242210050000000003', refundNo: 'R202611251002150000000004', amount: 2000 });
  });

  it('refuses a truncated zip', () => {
    expect(refusal(() => readAlipayBillZip(sample.subarray(0, Math.floor(sample.length * 0.7))))).toBe('TRUNCATED');
  });

  it('refuses a CSV in UTF-8 instead of GBK', () => {
    expect(refusal(() => readAlipayBillZip(rezip(Buffer.from(detail, 'utf8'))))).toBe('ENCODING');
  });

  it('refuses unexpected columns', () => {
    expect(refusal(() => readAlipayBillZip(rezip(iconv.encode(detail.replace('商家实收（元）', '实收（元）'), 'gbk'))))).toBe('UNEXPECTED_COLUMNS');
  });

  it('refuses a CSV cut before the end of its list, and lines that do not add up to the 合计 lines', () => {
    const cut = detail.slice(0, detail.indexOf('#-----------------------------------------业务明细列表结束'));
    expect(refusal(() => readAlipayBillZip(rezip(iconv.encode(cut, 'gbk'))))).toBe('TRUNCATED');
    const lines = detail.split('\r\n');
    lines.splice(6, 1);
    expect(refusal(() => readAlipayBillZip(rezip(iconv.encode(lines.join('\r\n'), 'gbk'))))).toBe('TOTALS_MISMATCH');
  });

  it('refuses a bill of another day', () => {
    expect(refusal(() => readAlipayBillZip(sample, { date: '2026-11-24' }))).toBe('WRONG_DAY');
  });
});

describe('Stripe balance transactions as a bill', () => {
  const list = JSON.parse(fixture('stripe-balance-transactions.20261125.json').toString('utf8')) as { data: Array<Record<string, any>> };

  it('reads charges and refunds by their metadata (the PaymentIntent when the charge has none) and skips payouts', () => {
    const bill = stripeBillFromBalanceTransactions(list.data, { date: '2026-11-25' });
    expect(bill.rows).toHaveLength(3);
    expect(bill.rows.map((r) => [r.kind, r.paymentNo, r.refundNo, r.amount, r.status])).toEqual([
      ['payment', 'P202611252353310000000001', undefined, 4999, 'SUCCEEDED'],
      ['refund', 'P202611241830550000000003', 'R202611251513200000000002', 1000, 'SUCCEEDED'],
      ['payment', 'P202611251108500000000004', undefined, 12800, 'SUCCEEDED'],
    ]);
    expect(bill.totals).toEqual({ paymentCount: 2, paymentAmount: 17799, refundCount: 1, refundAmount: 1000 });
  });

  it('refuses objects without an amount, unexpanded sources and transactions of another day', () => {
    const clone = () => structuredClone(list.data);
    const noAmount = clone();
    delete noAmount[0]!.amount;
    expect(refusal(() => stripeBillFromBalanceTransactions(noAmount, { date: '2026-11-25' }))).toBe('UNEXPECTED_COLUMNS');
    const unexpanded = clone();
    unexpanded[0]!.source = unexpanded[0]!.source.id;
    expect(refusal(() => stripeBillFromBalanceTransactions(unexpanded, { date: '2026-11-25' }))).toBe('UNEXPECTED_COLUMNS');
    expect(refusal(() => stripeBillFromBalanceTransactions(list.data, { date: '2026-11-26' }))).toBe('WRONG_DAY');
  });
});

describe('UnionPay reconciliation file (fileTransfer.do fileContent → zip → fixed-width ZM)', () => {
  const zm = fixture('unionpay-INN26112588ZM_777290058110048');
  const options = { date: '2026-11-25', merId: '777290058110048' };
  /** What fileTransfer.do answers: base64 of the deflated zip holding the ZM file (and its ZME companion). */
  const fileContent = (file: Buffer, name = 'INN26112588ZM_777290058110048') => {
    const zip = new AdmZip();
    zip.addFile(name, file);
    zip.addFile('INN26112588ZME_777290058110048', Buffer.alloc(0));
    return deflateSync(zip.toBuffer()).toString('base64');
  };
  const lines = zm.toString('latin1').split('\r\n').filter(Boolean);

  it('reads consumes (S22) and refunds (S30) at their fixed widths, linking a refund to its payment by queryId', () => {
    expect(lines.every((l) => l.length === UNIONPAY_ZM_WIDTH)).toBe(true);
    const bill = readUnionPayFileContent(fileContent(zm), options);
    expect(bill.rows.map((r) => [r.kind, r.paymentNo, r.refundNo, r.amount, r.providerTransactionId])).toEqual([
      ['payment', 'P202611250932550000000001', undefined, 10800, '202611250933001042331'],
      ['payment', 'P202611251421470000000002', undefined, 1, '202611251422101920381'],
      ['refund', 'P202611250932550000000001', 'R202611251502100000000003', 1000, '202611251502125520170'],
      ['refund', '', 'R202611251614590000000004', 2500, '202611251615016604310'],
    ]);
    expect(bill.rows[0]!.at).toEqual(new Date('2026-11-25T09:33:00+08:00'));
    expect(bill.totals).toEqual({ paymentCount: 2, paymentAmount: 10801, refundCount: 2, refundAmount: 3500 });
  });

  it('refuses a fileContent that does not inflate (truncated)', () => {
    const content = Buffer.from(fileContent(zm), 'base64');
    expect(refusal(() => readUnionPayFileContent(content.subarray(0, content.length - 30).toString('base64'), options))).toBe('TRUNCATED');
  });

  it('refuses lines of another layout, and a last line cut short', () => {
    const wider = Buffer.from(lines.map((l) => `${l} 000`).join('\r\n'), 'latin1');
    expect(refusal(() => parseUnionPayZmFile(wider, options))).toBe('UNEXPECTED_COLUMNS');
    const cut = zm.subarray(0, zm.length - 100);
    expect(refusal(() => parseUnionPayZmFile(cut, options))).toBe('TRUNCATED');
  });

  it('refuses a UTF-8 file (UnionPay files are GBK)', () => {
    expect(refusal(() => parseUnionPayZmFile(Buffer.from(iconv.decode(zm, 'gbk'), 'utf8'), options))).toBe('ENCODING');
  });

  it("refuses another merchant's lines, another day's, and an archive without the ZM file", () => {
    expect(refusal(() => parseUnionPayZmFile(zm, { ...options, merId: '777290058110099' }))).toBe('MALFORMED');
    expect(refusal(() => parseUnionPayZmFile(zm, { ...options, date: '2026-11-24' }))).toBe('WRONG_DAY');
    expect(refusal(() => readUnionPayFileContent(fileContent(zm, 'something-else.txt'), options))).toBe('MALFORMED');
  });
});
