import type { KeyObject } from 'node:crypto';
import { ProviderNetworkError, ProviderSignatureError } from '../errors';
import { encodeForm, parseAcpResponse, signFields, verifyUnionPayMessage, type SignerTrust } from './crypto';
import type { AcpFields } from './types';

const PROVIDER = 'unionpay';

export interface UnionPayHttpClientOptions {
  merId: string;
  signKey: KeyObject;
  certId: string;
  trust: SignerTrust;
  timeoutMs: number;
}

/**
 * Server-to-server ACP calls (`backTransReq.do`, `queryTrans.do`): signs the fields, POSTs them form-encoded, and
 * resolves only with an answer whose `signPubKeyCert` and `signature` verify (and that names this merchant).
 *
 * - No answer, timeout, or any HTTP status but 200 (UnionPay answers every request with 200 and a signed body,
 *   errors included): ProviderNetworkError; the outcome at UnionPay is unknown.
 * - A 200 whose body is unparseable, unsigned, signed by an untrusted certificate, badly signed, or about another
 *   merchant: ProviderSignatureError.
 * The business answer (`respCode`) is the caller's to judge.
 */
export class UnionPayHttpClient {
  constructor(private readonly options: UnionPayHttpClientOptions) {}

  /** The request fields, signed (blank fields dropped, `certId` and `signature` added). */
  sign(fields: AcpFields): AcpFields {
    return signFields(fields, this.options.signKey, this.options.certId);
  }

  async post(url: string, what: string, fields: AcpFields): Promise<AcpFields> {
    const body = encodeForm(this.sign(fields));
    let status: number;
    let text: string;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8', accept: 'text/plain, */*' },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      const e = err as { name?: string; message?: string; cause?: { code?: string } };
      const why = e?.name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : (e?.cause?.code ?? e?.message);
      throw new ProviderNetworkError(`UnionPay ${what} failed: ${why}`, PROVIDER, { cause: err });
    }
    if (status !== 200) throw new ProviderNetworkError(`UnionPay answered HTTP ${status} to ${what}`, PROVIDER);

    let answer: AcpFields;
    try {
      answer = parseAcpResponse(text);
    } catch (err) {
      throw new ProviderSignatureError(`UnionPay answer to ${what} is not an ACP message`, PROVIDER, { cause: err });
    }
    const verified = verifyUnionPayMessage(answer, this.options.trust);
    if (!verified.ok) {
      throw new ProviderSignatureError(`UnionPay answer to ${what} failed verification: ${verified.reason}`, PROVIDER);
    }
    if (answer.merId !== undefined && answer.merId !== this.options.merId) {
      throw new ProviderSignatureError(`UnionPay answer to ${what} is about merchant ${answer.merId}`, PROVIDER);
    }
    return answer;
  }
}
