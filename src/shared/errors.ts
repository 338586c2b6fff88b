import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { OptimisticLockError } from '@mikro-orm/core';
import { ProviderError } from '../payments/providers/errors';

/** The error codes of the contract: the only codes a client sees for failures it can cause. */
export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  INVALID_TRANSITION: 'INVALID_TRANSITION',
  OUT_OF_STOCK: 'OUT_OF_STOCK',
  COUPON_INVALID: 'COUPON_INVALID',
  ALREADY_PAID: 'ALREADY_PAID',
  REFUND_EXCEEDS_PAID: 'REFUND_EXCEEDS_PAID',
  IDEMPOTENCY_CONFLICT: 'IDEMPOTENCY_CONFLICT',
  PAYMENT_PROVIDER_ERROR: 'PAYMENT_PROVIDER_ERROR',
  RATE_LIMITED: 'RATE_LIMITED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A failure the client caused (or may retry): its message is meant for the client. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string) => new DomainError(ErrorCode.NOT_FOUND, `${what} not found`);
export const badInput = (message: string, details?: Record<string, unknown>) =>
  new DomainError(ErrorCode.BAD_USER_INPUT, message, details);

/** Codes GraphQL itself (parse/validation, type-graphql's validation) raises for malformed requests; passed through. */
const PASSTHROUGH = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
  ...Object.values(ErrorCode),
]);

/**
 * The one place that maps errors to what a client sees. Domain errors keep their code and message; GraphQL's own
 * request errors pass through; anything else (SQL, provider internals, bugs) becomes a bare INTERNAL_SERVER_ERROR and
 * is reported to `onUnexpected` (logged with the request id) — its message never leaves the server.
 */
export function formatClientError(
  formatted: GraphQLFormattedError,
  error: unknown,
  onUnexpected: (err: unknown) => void,
): GraphQLFormattedError {
  const original = unwrapResolverError(error);
  const base = { locations: formatted.locations, path: formatted.path };
  if (original instanceof DomainError) {
    return { ...base, message: original.message, extensions: { code: original.code, ...original.details } };
  }
  if (original instanceof ProviderError) {
    onUnexpected(original);
    return {
      ...base,
      message: 'The payment provider could not be reached or refused the request; nothing was charged by this call',
      extensions: { code: ErrorCode.PAYMENT_PROVIDER_ERROR },
    };
  }
  if (original instanceof OptimisticLockError) {
    return {
      ...base,
      message: 'The order was changed concurrently; reload it and try again',
      extensions: { code: ErrorCode.INVALID_TRANSITION },
    };
  }
  const code = formatted.extensions?.code;
  if (typeof code === 'string' && PASSTHROUGH.has(code) && (original instanceof GraphQLError || original === error)) {
    const { stacktrace: _s, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions };
  }
  onUnexpected(original);
  return { ...base, message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
}
