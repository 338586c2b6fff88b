import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { verifyBearer } from './auth';
import { BadInput, OutOfStock, type FloorStore, type OrderLine } from './store';

/**
 * createOrder floor: the same HTTP request the service gets (a GraphQL POST; the floor reads only `variables.input`),
 * the bearer token checked, the request hashed for idempotency, then the service's SQL transaction with the plain
 * driver (idempotency lookup; BEGIN; products by SKU; conditional stock update per line; insert order; insert its
 * history row; COMMIT), answered in GraphQL's response shape.
 */
export function createOrderFloor(store: FloorStore, jwtSecret: string) {
  return async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> => {
    const user = verifyBearer(jwtSecret, req.headers.authorization);
    if (!user) return reply(res, 401, { errors: [{ message: 'unauthenticated', extensions: { code: 'UNAUTHENTICATED' } }] });
    let input: { items?: OrderLine[]; idempotencyKey?: string | null };
    try {
      input = (JSON.parse(body.toString('utf8')) as { variables?: { input?: typeof input } }).variables?.input ?? {};
    } catch {
      return reply(res, 400, { errors: [{ message: 'bad json', extensions: { code: 'BAD_USER_INPUT' } }] });
    }
    const lines = Array.isArray(input.items) ? input.items : [];
    if (!lines.length || lines.some((l) => typeof l?.sku !== 'string' || !Number.isInteger(l.quantity) || l.quantity < 1)) {
      return reply(res, 200, { errors: [{ message: 'bad items', extensions: { code: 'BAD_USER_INPUT' } }] });
    }
    const hash = createHash('sha256')
      .update(JSON.stringify({ items: lines.map((l) => [l.sku, l.quantity]), couponCode: null, shippingAddress: null, note: null }))
      .digest('hex');
    try {
      const order = await store.createOrder(user.id, lines, input.idempotencyKey ?? null, hash);
      reply(res, 200, { data: { createOrder: order } });
    } catch (err) {
      const code = err instanceof OutOfStock ? 'OUT_OF_STOCK' : err instanceof BadInput ? 'BAD_USER_INPUT' : 'INTERNAL_SERVER_ERROR';
      reply(res, 200, { errors: [{ message: (err as Error).message, extensions: { code } }] });
    }
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
}
