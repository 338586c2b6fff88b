import { Decorator } from 'wechatpay-axios-plugin';
import { downloadBillFile } from '../../../reconciliation/download';
import { ProviderNetworkError, ProviderRejectedError, ProviderSignatureError } from '../errors';
import { WECHATPAY_DEFAULT_TIMEOUT_MS, type WechatPayConfig } from './config';
import {
  buildAuthorization,
  buildRequestMessage,
  generateNonce,
  rsaSign,
  timestampWithinWindow,
  toPrivateKey,
  unixTimestamp,
} from './crypto';

const PROVIDER = 'wechatpay';

// axios is the plugin's own dependency: take its types through the plugin rather than importing axios directly.
type AxiosInstance = ReturnType<typeof Decorator.jsonBased>;
interface AxiosResponse {
  status: number;
  headers: unknown;
  data: unknown;
}

export interface WechatPayResponse<T> {
  status: number;
  data: T;
}

/** WeChat Pay's error body: `{ code, message, detail? }`. */
export interface WechatPayErrorBody {
  code: string;
  message?: string;
  detail?: unknown;
}

/**
 * Signed HTTP to WeChat Pay API v3 through `wechatpay-axios-plugin`: its request interceptor signs every request
 * (`Authorization: WECHATPAY2-SHA256-RSA2048 …`, over the full URL path, base-URL prefix included) and its
 * response transformer verifies `Wechatpay-Timestamp/Nonce/Serial/Signature` on the raw body before JSON parsing.
 *
 * Quirk of the plugin (lib/decorator.js `responseVerifier`, "no need verification anymore while the HTTP status is
 * not 20X code", since v0.8.13): it only verifies responses that pass `validateStatus`. Every request here
 * therefore passes `validateStatus: () => true`, so 4xx and 5xx answers are verified too and a forged
 * `{code: "ORDER_PAID"}` cannot steer the caller; the status is judged afterwards.
 */
export class WechatPayHttpClient {
  private readonly http: AxiosInstance;
  private readonly timeoutMs: number;

  constructor(private readonly config: WechatPayConfig) {
    this.timeoutMs = config.timeoutMs ?? WECHATPAY_DEFAULT_TIMEOUT_MS;
    // jsonBased's typings list only the plugin's own keys; axios options (baseURL, timeout, …) ride along.
    const options: Parameters<typeof Decorator.jsonBased>[0] & Record<string, unknown> = {
      mchid: config.mchid,
      serial: config.merchantSerial,
      privateKey: config.merchantPrivateKey,
      certs: { [config.platformPublicKeyId]: config.platformPublicKey },
      baseURL: config.baseUrl,
      timeout: this.timeoutMs,
      maxRedirects: 0,
    };
    this.http = Decorator.jsonBased(options);
  }

  /**
   * Sends one signed request. Resolves only with a verified 2xx answer; otherwise throws
   * ProviderNetworkError (no answer, timeout, 5xx), ProviderSignatureError (unsigned or badly signed answer) or
   * ProviderRejectedError (a verified 4xx, carrying WeChat Pay's `code`).
   */
  async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<WechatPayResponse<T>> {
    let res: AxiosResponse;
    try {
      res = await this.http.request<unknown, AxiosResponse>({
        method,
        // The plugin signs `new URL(url, baseURL)`; a relative path keeps the base URL's own path prefix.
        url: path.replace(/^\/+/, ''),
        data: body,
        validateStatus: () => true,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw classifyFailure(err, method, path);
    }

    const { status } = res;
    if (status >= 500) {
      throw new ProviderNetworkError(`WeChat Pay answered HTTP ${status} to ${method} ${path}`, PROVIDER);
    }
    // The plugin lets a non-numeric timestamp through (`NaN > 300` is false); the window is part of verification.
    const ts = headerValue(res.headers, 'wechatpay-timestamp');
    if (ts === undefined || !timestampWithinWindow(ts)) {
      throw new ProviderSignatureError(`WeChat Pay response to ${method} ${path} has an invalid timestamp`, PROVIDER);
    }
    if (status >= 200 && status < 300) return { status, data: res.data as T };

    const data = res.data;
    if (isErrorBody(data)) {
      throw new ProviderRejectedError(data.message || data.code, PROVIDER, data.code, status);
    }
    throw new ProviderRejectedError(`WeChat Pay answered HTTP ${status} to ${method} ${path}`, PROVIDER, `HTTP_${status}`, status);
  }

  /**
   * Downloads a file a verified answer pointed to (a bill's `download_url`). The request is signed like every API
   * call; the answer is raw bytes WeChat Pay does not sign (its integrity comes from the hash in the signed answer
   * that named the URL), which is why this bypasses the plugin's response verifier.
   */
  async download(url: string): Promise<Buffer> {
    const target = new URL(url);
    const timestamp = String(unixTimestamp());
    const nonce = generateNonce();
    const signature = rsaSign(
      buildRequestMessage('GET', `${target.pathname}${target.search}`, timestamp, nonce),
      toPrivateKey(this.config.merchantPrivateKey),
    );
    const authorization = buildAuthorization({ mchid: this.config.mchid, nonce_str: nonce, timestamp, serial_no: this.config.merchantSerial, signature });
    return downloadBillFile(PROVIDER, url, { headers: { Authorization: authorization, Accept: '*/*' }, timeoutMs: this.timeoutMs * 3 });
  }
}

function classifyFailure(err: unknown, method: string, path: string): Error {
  const e = err as { isAxiosError?: boolean; code?: string; message?: string; response?: { status?: number } };
  const what = `${method} ${path}`;
  // Thrown by the plugin's responseDetectorInterceptor when the responseVerifier refused the answer.
  if (typeof e?.code === 'string' && e.code.startsWith('EV3_RES_')) {
    const status = e.response?.status ?? 0;
    if (status >= 500) {
      return new ProviderNetworkError(`WeChat Pay answered HTTP ${status} (unverified) to ${what}`, PROVIDER, { cause: err });
    }
    return new ProviderSignatureError(`WeChat Pay response to ${what} failed verification: ${e.code}`, PROVIDER, {
      cause: err,
    });
  }
  if (e?.isAxiosError && !e.response) {
    return new ProviderNetworkError(`WeChat Pay request ${what} failed: ${e.code ?? e.message}`, PROVIDER, { cause: err });
  }
  // Anything else was thrown while reading the answer: it cannot be trusted.
  return new ProviderSignatureError(`WeChat Pay response to ${what} could not be verified`, PROVIDER, { cause: err });
}

function headerValue(headers: unknown, name: string): string | undefined {
  const h = headers as { get?: (n: string) => unknown } & Record<string, unknown>;
  const v = typeof h?.get === 'function' ? h.get(name) : h?.[name];
  return v === undefined || v === null ? undefined : String(v);
}

function isErrorBody(data: unknown): data is WechatPayErrorBody {
  return typeof data === 'object' && data !== null && typeof (data as WechatPayErrorBody).code === 'string';
}
