import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs. Secrets never reach them: known secret-bearing paths are redacted as a second line of
 * defence, but the rule is to not log them in the first place.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'order-payment-service' },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'authorization', '*.privateKey', '*.apiV3Key', '*.secret'],
      censor: '[redacted]',
    },
  });
}
export type { Logger };
