/**
 * Provider failures, sorted so callers can decide what is safe:
 * - ProviderNetworkError: no trustworthy answer (timeout, connection reset, 5xx). The outcome at the provider is
 *   unknown; never assume the call did not happen (query, or retry with the same merchant numbers).
 * - ProviderRejectedError: the provider answered, verified, and said no (`providerCode` is its own code, e.g.
 *   `ORDER_PAID`, `ACQ.TRADE_NOT_EXIST`).
 * - ProviderSignatureError: an answer that is unsigned or badly signed; treated like no answer at all.
 * None of these messages ever reaches a client: the error mapper turns them into PAYMENT_PROVIDER_ERROR.
 */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly provider: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class ProviderNetworkError extends ProviderError {}

export class ProviderSignatureError extends ProviderError {}

export class ProviderRejectedError extends ProviderError {
  constructor(
    message: string,
    provider: string,
    readonly providerCode: string,
    readonly httpStatus?: number,
  ) {
    super(message, provider);
  }
}
