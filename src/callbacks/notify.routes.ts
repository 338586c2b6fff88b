import type { IncomingMessage, ServerResponse } from 'node:http';
import getRawBody from 'raw-body';
import { DEFAULT_MERCHANT_ID } from '../shared/db/entity';
import type { Logger } from '../shared/logger';
import type { CallbackProcessor } from './processor';

/** Largest notification body accepted (providers send a few KB). */
const BODY_LIMIT = '256kb';

/**
 * `POST /notify/:provider`: provider callbacks, read as raw bytes (signatures cover the exact body; never re-serialize).
 *
 * A plain `node:http` handler in front of Express, not an Express route: a callback is the busiest request a shop
 * gets at its busiest moment, and Express's router and body parser cost more CPU per delivery than verifying the
 * signature (README, "Performance"). Answers `true` when the request was a notification and has been taken care of.
 * One default merchant for now; multi-merchant mode adds `/notify/:provider/:merchantId` here.
 */
export function notifyHandler(processor: CallbackProcessor, log: Logger) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const match = req.method === 'POST' ? /^\/notify\/([a-z]+)\/?(?:\?|$)/.exec(req.url ?? '') : null;
    if (!match) return false;
    void handle(match[1]!, req, res);
    return true;
  };

  async function handle(provider: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let rawBody: Buffer;
    try {
      rawBody = await getRawBody(req, { limit: BODY_LIMIT, length: req.headers['content-length'] });
    } catch (err) {
      const status = (err as { status?: number }).status ?? 400;
      return reply(res, status, 'application/json', JSON.stringify({ code: 'FAIL', message: (err as Error).message }));
    }
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(',') : v;
    try {
      const answer = await processor.handle(provider, DEFAULT_MERCHANT_ID, { headers, rawBody });
      if (!answer) {
        return reply(res, 404, 'application/json', JSON.stringify({ code: 'NOT_FOUND', message: `no ${provider} provider here` }));
      }
      reply(res, answer.status, answer.contentType, answer.body ?? '');
    } catch (err) {
      // Our failure, not the provider's: answer 500 so it retries later; nothing was half-applied (one transaction).
      log.error({ err, provider }, 'notification processing failed');
      reply(res, 500, 'application/json', JSON.stringify({ code: 'FAIL', message: 'temporarily unable to process' }));
    }
  }
}

/** The provider's expected reply; a string body is sent as UTF-8 (as Express's `res.send` does). */
function reply(res: ServerResponse, status: number, contentType: string | undefined, body: string): void {
  const headers: Record<string, string | number> = { 'content-length': Buffer.byteLength(body) };
  if (contentType) headers['content-type'] = contentType.includes('charset=') ? contentType : `${contentType}; charset=utf-8`;
  res.writeHead(status, headers).end(body);
}
