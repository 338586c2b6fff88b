import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KeyObject } from 'node:crypto';
import type { Redis } from 'ioredis';
import { aesGcmDecrypt, buildResponseMessage, rsaVerify, timestampWithinWindow, toPublicKey } from '../../src/payments/providers/wechatpay/crypto';
import type { FloorStore } from './store';

export interface WechatFloorConfig {
  mchid: string;
  appid: string;
  apiV3Key: string;
  platformPublicKey: string;
  platformPublicKeyId: string;
}

/**
 * Payment callback floor: WeChat Pay's signature check on the raw bytes (serial, ±300 s timestamp, SHA256withRSA with
 * the platform key), AES-256-GCM decryption of the resource, merchant/app id check, the exactly-once conditional
 * update, and PUBLISH of a pre-serialized event to the order's topic before answering 204. A forged or malformed
 * delivery gets 400 like the service's; a duplicate finds nothing to update and is acknowledged (204).
 */
export function callbackFloor(store: FloorStore, pub: Redis, config: WechatFloorConfig) {
  const platformKey: KeyObject = toPublicKey(config.platformPublicKey);
  return async (req: IncomingMessage, res: ServerResponse, rawBody: Buffer): Promise<void> => {
    const h = req.headers;
    const timestamp = h['wechatpay-timestamp'];
    const nonce = h['wechatpay-nonce'];
    const signature = h['wechatpay-signature'];
    const serial = h['wechatpay-serial'];
    if (typeof timestamp !== 'string' || typeof nonce !== 'string' || typeof signature !== 'string' || serial !== config.platformPublicKeyId) {
      return fail(res, 'missing or unknown signature headers');
    }
    if (!timestampWithinWindow(timestamp)) return fail(res, 'timestamp outside the 300 s window');
    if (!rsaVerify(buildResponseMessage(timestamp, nonce, rawBody), signature, platformKey)) return fail(res, 'invalid signature');
    let resource: Record<string, any>;
    try {
      const body = JSON.parse(rawBody.toString('utf8'));
      const r = body.resource;
      resource = JSON.parse(aesGcmDecrypt(r.ciphertext, config.apiV3Key, r.nonce, r.associated_data ?? ''));
    } catch {
      return fail(res, 'resource decryption failed');
    }
    if (resource.mchid !== config.mchid || resource.appid !== config.appid || resource.trade_state !== 'SUCCESS') {
      return fail(res, 'not this merchant');
    }
    const paidAt = resource.success_time ? new Date(resource.success_time) : new Date();
    try {
      const paid = await store.applyPayment(String(resource.out_trade_no), Number(resource.amount?.total), String(resource.transaction_id), paidAt);
      if (paid) {
        const event = JSON.stringify({
          orderId: paid.orderId,
          orderNo: paid.orderNo,
          orderStatus: 'PAID',
          paymentId: paid.paymentId,
          paymentNo: paid.paymentNo,
          paymentStatus: 'SUCCEEDED',
          channel: paid.channel,
          totalAmount: paid.totalAmount,
          paidAmount: paid.paidAmount,
          refundedAmount: paid.refundedAmount,
          occurredAt: new Date().toISOString(),
          version: paid.version,
        });
        await pub.publish(`order:${paid.orderId}`, event);
      }
      res.writeHead(204).end();
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'FAIL', message: String((err as Error).message) }));
    }
  };
}

function fail(res: ServerResponse, message: string): void {
  const text = JSON.stringify({ code: 'FAIL', message });
  res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
