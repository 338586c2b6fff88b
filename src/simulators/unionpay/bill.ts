/**
 * The UnionPay simulator's reconciliation files, written the way UnionPay writes them for `fileTransfer.do`
 * (`fileType=00`): a zip holding the general transaction file `INN<yyMMdd>88ZM_<merId>` (fixed-width lines, one
 * space between fields, GBK; layout in `reconciliation/unionpay-bill.ts`) and its error-transaction companion
 * `…ZME_<merId>` (empty here), deflated and base64-encoded into the answer's `fileContent`.
 */
import { deflateSync } from 'node:zlib';
import AdmZip from 'adm-zip';
import iconv from 'iconv-lite';
import type { BillCorruption, FaultableLine } from '../shared/bill-faults';
import { MASKED_CARD } from './messages';

export interface UnionPayBillLine extends FaultableLine {
  merId: string;
  queryId: string;
  traceNo: string;
  /** `MMDDhhmmss`, China time. */
  traceTime: string;
  channelType: string;
  bizType: string;
  txnSubType: string;
  /** Refunds: the payment's queryId, traceNo, traceTime and orderId. */
  orig?: { queryId: string; traceNo: string; traceTime: string; orderId: string };
}

const num = (v: number | string, width: number) => String(v).padStart(width, '0').slice(-width);
const text = (v: string, width: number) => v.padEnd(width, ' ').slice(0, width);
const signed = (sign: 'C' | 'D', fen: number) => sign + num(fen, 12);

/** One ZM line (the widths of `UNIONPAY_ZM_FIELDS`). */
function zmLine(l: UnionPayBillLine): string {
  const consume = l.kind === 'payment';
  return [
    consume ? 'S22' : 'S30',
    text('00049992', 11),
    text('00049992', 11),
    num(l.traceNo, 6),
    num(l.traceTime, 10),
    text(MASKED_CARD, 19),
    num(l.amount, 12),
    '5811',
    consume && l.channelType === '07' ? '07' : '08',
    num(l.queryId, 21),
    '00',
    text(l.kind === 'payment' ? l.paymentNo : (l.refundNo ?? ''), 32),
    '01',
    num(l.orig?.traceNo ?? 0, 6),
    num(l.orig?.traceTime ?? 0, 10),
    signed('D', 0),
    signed(consume ? 'C' : 'D', l.amount),
    text('', 4),
    text('', 15),
    consume ? '01' : '04',
    num(l.txnSubType, 2),
    num(l.bizType, 6),
    '01',
    text('', 4),
    text('', 32),
    '2',
    text(l.orig?.queryId ?? '', 21),
    text(l.merId, 15),
    '0',
    text('', 15),
    text('', 32),
    num(0, 13),
    signed(consume ? 'C' : 'D', l.amount),
    text('', 8),
    text('', 32),
    num(0, 13),
    num(0, 13),
    num(0, 12),
    '00',
    '0',
    text(l.orig?.orderId ?? '', 32),
    text('', 98),
  ].join(' ');
}

/** The answer's `fileName` and `fileContent` for a day's lines, or what a corruption makes of them. */
export function renderUnionPayFile(merId: string, date: string, lines: readonly UnionPayBillLine[], corruption: BillCorruption | null) {
  const yymmdd = date.slice(2).replace(/-/g, '');
  const ordered = [...lines].sort((a, b) => a.traceTime.localeCompare(b.traceTime));
  const zm = ordered.map((l) => (corruption === 'columns' ? `${zmLine(l)} 000` : zmLine(l))).join('\r\n');
  const zip = new AdmZip();
  zip.addFile(`INN${yymmdd}88ZM_${merId}`, iconv.encode(zm ? `${zm}\r\n` : '', 'gbk'));
  zip.addFile(`INN${yymmdd}88ZME_${merId}`, Buffer.alloc(0));
  let deflated = deflateSync(zip.toBuffer());
  if (corruption === 'truncate') deflated = deflated.subarray(0, Math.floor(deflated.length / 2));
  return { fileName: `${date.replace(/-/g, '')}_${merId}.zip`, fileContent: deflated.toString('base64') };
}
