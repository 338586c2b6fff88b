import { ProviderNetworkError, ProviderRejectedError } from '../payments/providers/errors';

/** Bills above this size are refused rather than read into memory (a day of a very large merchant is far below). */
export const MAX_BILL_BYTES = 256 * 1024 * 1024;

/**
 * Downloads a bill file from the URL a provider's signed answer named (WeChat `download_url`, Alipay
 * `bill_download_url`). The file itself is not signed: the caller checks it (WeChat's SHA1, the archive's own CRCs,
 * the summary lines). No answer, a timeout or a 5xx is a ProviderNetworkError; another non-2xx a
 * ProviderRejectedError carrying `HTTP_<status>` (or the provider's JSON `code` when the body has one).
 */
export async function downloadBillFile(
  provider: string,
  url: string,
  options: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Buffer> {
  let res: Response;
  try {
    res = await fetch(url, { headers: options.headers, redirect: 'follow', signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) });
  } catch (err) {
    throw new ProviderNetworkError(`bill download failed: ${(err as Error).message}`, provider, { cause: err });
  }
  if (res.status >= 500) throw new ProviderNetworkError(`bill download answered HTTP ${res.status}`, provider);
  const length = Number(res.headers.get('content-length') ?? '0');
  if (length > MAX_BILL_BYTES) throw new ProviderRejectedError(`bill file of ${length} bytes is too large`, provider, 'BILL_TOO_LARGE');
  let body: Buffer;
  try {
    body = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    throw new ProviderNetworkError(`bill download was cut off: ${(err as Error).message}`, provider, { cause: err });
  }
  if (res.status < 200 || res.status >= 300) {
    let code = `HTTP_${res.status}`;
    try {
      const json = JSON.parse(body.toString('utf8')) as { code?: unknown };
      if (typeof json.code === 'string' && json.code) code = json.code;
    } catch {
      // not JSON: the status says enough
    }
    throw new ProviderRejectedError(`bill download answered HTTP ${res.status} (${code})`, provider, code, res.status);
  }
  return body;
}
