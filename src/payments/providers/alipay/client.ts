import { AlipaySdk } from 'alipay-sdk';
import { ProviderNetworkError, ProviderRejectedError, ProviderSignatureError } from '../errors';
import { ALIPAY_DEFAULT_TIMEOUT_MS, type AlipayConfig } from './config';
import { formatChinaDateTime, privateKeyType, toPublicKeyPem } from './crypto';
import type { CommonResponse } from './types';

const PROVIDER = 'alipay';

/**
 * Signed calls to the Alipay gateway through the official `alipay-sdk` (v4): it signs every request (common
 * parameters in the query string, `biz_content` in the form body) and, with `validateSign: true`, verifies the
 * answer's `sign` over the raw text of its `*_response` object before anything is read.
 *
 * Two SDK quirks handled here (alipay-sdk 4.14 `src/util.ts` `sign`, `src/alipay.ts` `exec`):
 * - It stamps `timestamp` in the host's local time (utility's `YYYYMMDDHHmmss()`), but lets a `timestamp` given
 *   with the parameters override it: every call passes China time explicitly, so a host in UTC is not 8 hours off.
 * - It reports every failure as `AlipayRequestError` (or a bare TypeError when `sign` is missing), told apart only
 *   by message: "HttpClient Request error" (no answer), "HTTP 请求错误, status: N" (non-200), anything else
 *   (验签失败, unparseable or unexpected JSON) is an answer that could not be verified.
 */
export class AlipayClient {
  private readonly sdk: AlipaySdk;

  constructor(config: AlipayConfig) {
    if (!/^\d{1,32}$/.test(config.appId)) throw new Error(`the Alipay app id must be digits (ALIPAY_APP_ID): ${config.appId}`);
    this.sdk = new AlipaySdk({
      appId: config.appId,
      privateKey: config.privateKey.trim(),
      keyType: privateKeyType(config.privateKey),
      alipayPublicKey: toPublicKeyPem(config.alipayPublicKey),
      gateway: config.gateway,
      timeout: config.timeoutMs ?? ALIPAY_DEFAULT_TIMEOUT_MS,
      signType: 'RSA2',
      // Keep Alipay's own snake_case keys in answers (the default converts them to camelCase).
      camelcase: false,
    });
  }

  /**
   * Calls `method` and resolves only with a verified `code: "10000"` answer. Otherwise throws ProviderNetworkError
   * (no answer, timeout, non-200, or Alipay's "try again" codes 20000 / ACQ.SYSTEM_ERROR whose outcome is unknown),
   * ProviderSignatureError (unsigned or badly signed answer) or ProviderRejectedError (a verified refusal, carrying
   * `sub_code`).
   */
  async call<T extends CommonResponse>(method: string, bizContent: object, params: Record<string, string> = {}): Promise<T> {
    let res: CommonResponse;
    try {
      res = (await this.sdk.exec(method, { bizContent, ...params, timestamp: formatChinaDateTime(new Date()) }, { validateSign: true })) as CommonResponse;
    } catch (err) {
      throw classifyFailure(err, method);
    }
    if (res?.code === '10000') return res as T;
    const code = res?.sub_code || res?.code || 'UNKNOWN';
    const message = `${method}: ${res?.sub_msg || res?.msg || code}`;
    if (res?.code === '20000' || res?.sub_code === 'ACQ.SYSTEM_ERROR') {
      throw new ProviderNetworkError(`Alipay could not process ${message} (${code}); retry with the same numbers`, PROVIDER);
    }
    throw new ProviderRejectedError(message, PROVIDER, code);
  }

  /**
   * The signed gateway URL a browser opens for page-type methods (`alipay.trade.page.pay`, `alipay.trade.wap.pay`):
   * common parameters, `biz_content` and `sign` all in the query string. Nothing is sent from here.
   */
  pageUrl(method: string, bizContent: object, params: Record<string, string> = {}): string {
    return this.sdk.pageExecute(method, 'GET', { bizContent, ...params, timestamp: formatChinaDateTime(new Date()) });
  }
}

function classifyFailure(err: unknown, method: string): Error {
  const e = err as { name?: string; message?: string };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (e?.name === 'AlipayRequestError') {
    if (message.startsWith('HttpClient Request error')) {
      return new ProviderNetworkError(`Alipay request ${method} failed: ${message}`, PROVIDER, { cause: err });
    }
    const status = /status: (\d+)/.exec(message)?.[1];
    if (status) return new ProviderNetworkError(`Alipay answered HTTP ${status} to ${method}`, PROVIDER, { cause: err });
  }
  return new ProviderSignatureError(`Alipay answer to ${method} could not be verified`, PROVIDER, { cause: err });
}
