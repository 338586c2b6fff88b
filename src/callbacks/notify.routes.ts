import express, { type Router } from 'express';
import { DEFAULT_MERCHANT_ID } from '../shared/db/entity';
import type { Logger } from '../shared/logger';
import type { CallbackProcessor } from './processor';

/**
 * `POST /notify/:provider`: provider callbacks, read as raw bytes (signatures cover the exact body; never re-serialize).
 * One default merchant for now; multi-merchant mode adds `/notify/:provider/:merchantId` here.
 */
export function notifyRouter(processor: CallbackProcessor, log: Logger): Router {
  const router = express.Router();
  router.post('/:provider', express.raw({ type: () => true, limit: '256kb' }), async (req, res) => {
    const provider = String(req.params.provider);
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
    try {
      const reply = await processor.handle(provider, DEFAULT_MERCHANT_ID, { headers, rawBody });
      if (!reply) return void res.status(404).json({ code: 'NOT_FOUND', message: `no ${provider} provider here` });
      if (reply.contentType) res.type(reply.contentType);
      res.status(reply.status).send(reply.body ?? '');
    } catch (err) {
      // Our failure, not the provider's: answer 500 so it retries later; nothing was half-applied (one transaction).
      log.error({ err, provider }, 'notification processing failed');
      res.status(500).json({ code: 'FAIL', message: 'temporarily unable to process' });
    }
  });
  return router;
}
