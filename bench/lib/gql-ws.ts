import WebSocket from 'ws';

/**
 * A raw `ws` client speaking graphql-transport-ws (the graphql-ws protocol): connection_init with the bearer token,
 * subscribe/next/error/complete, many subscriptions multiplexed on one socket. Used by the probe (the "checkout
 * screen" whose latency is measured), the flow customers and the swarm.
 */

export const PAYMENT_STATUS_SUBSCRIPTION = `subscription($orderId: ID!) {
  paymentStatusChanged(orderId: $orderId) {
    orderId orderNo orderStatus paymentId paymentNo paymentStatus channel totalAmount paidAmount refundedAmount occurredAt
  }
}`;

export interface StatusEvent {
  orderId: string;
  orderStatus: string;
  [k: string]: unknown;
}

export interface SubscriptionHandlers {
  next(event: StatusEvent, receivedAt: number): void;
  error?(errors: unknown): void;
  complete?(): void;
}

export class GqlSocket {
  private ws!: WebSocket;
  private seq = 0;
  private readonly subs = new Map<string, SubscriptionHandlers>();
  closed = false;

  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly localAddress?: string,
  ) {}

  open(timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, 'graphql-transport-ws', { localAddress: this.localAddress, perMessageDeflate: false });
      this.ws = ws;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('connection_ack timeout'));
      }, timeoutMs);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${this.token}` } })));
      ws.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.on('close', (code, reason) => {
        this.closed = true;
        clearTimeout(timer);
        reject(new Error(`closed ${code} ${reason.toString()}`));
        for (const h of this.subs.values()) h.error?.(new Error(`socket closed ${code}`));
        this.subs.clear();
      });
      ws.on('message', (data) => {
        const receivedAt = performance.now();
        let m: { type: string; id?: string; payload?: any };
        try {
          m = JSON.parse(data.toString());
        } catch {
          return;
        }
        if (m.type === 'connection_ack') {
          clearTimeout(timer);
          resolve();
          return;
        }
        if (m.type === 'ping') {
          ws.send('{"type":"pong"}');
          return;
        }
        const h = m.id ? this.subs.get(m.id) : undefined;
        if (!h) return;
        if (m.type === 'next') {
          if (m.payload?.errors) h.error?.(m.payload.errors);
          else h.next(m.payload?.data?.paymentStatusChanged as StatusEvent, receivedAt);
        } else if (m.type === 'error') {
          this.subs.delete(m.id!);
          h.error?.(m.payload);
        } else if (m.type === 'complete') {
          this.subs.delete(m.id!);
          h.complete?.();
        }
      });
    });
  }

  /** Subscribes to an order's payment status; returns the subscription id. */
  subscribe(orderId: string, handlers: SubscriptionHandlers): string {
    const id = String(++this.seq);
    this.subs.set(id, handlers);
    this.ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query: PAYMENT_STATUS_SUBSCRIPTION, variables: { orderId } } }));
    return id;
  }

  complete(id: string): void {
    if (!this.subs.delete(id)) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ id, type: 'complete' }));
  }

  close(): void {
    this.closed = true;
    this.subs.clear();
    this.ws?.terminate();
  }
}

/** Waits for the first event of a subscription (the snapshot) and keeps forwarding later ones. */
export function subscribeWithSnapshot(
  socket: GqlSocket,
  orderId: string,
  onLater: (event: StatusEvent, receivedAt: number) => void,
  timeoutMs = 30_000,
): Promise<{ id: string; snapshot: StatusEvent }> {
  return new Promise((resolve, reject) => {
    let first = true;
    const timer = setTimeout(() => reject(new Error(`no snapshot for ${orderId} within ${timeoutMs} ms`)), timeoutMs);
    const id = socket.subscribe(orderId, {
      next: (e, at) => {
        if (first) {
          first = false;
          clearTimeout(timer);
          resolve({ id, snapshot: e });
        } else onLater(e, at);
      },
      error: (errors) => {
        clearTimeout(timer);
        if (first) reject(new Error(`subscription failed: ${JSON.stringify(errors)}`));
      },
    });
  });
}
