import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** A graphql-ws subscriber that collects events, for assertions like "PAID arrives within a second". */
export class Subscriber<T = any> {
  readonly events: T[] = [];
  readonly errors: unknown[] = [];
  completed = false;
  private waiters: Array<() => void> = [];
  private readonly client: Client;
  private dispose: (() => void) | null = null;

  constructor(httpUrl: string, token: string | null, query: string, variables: Record<string, unknown>) {
    this.client = createClient({
      url: httpUrl.replace(/^http/, 'ws') + '/graphql',
      webSocketImpl: WebSocket,
      connectionParams: token ? { authorization: `Bearer ${token}` } : {},
      retryAttempts: 0,
      lazy: false,
      onNonLazyError: (err) => this.fail(err),
    });
    this.dispose = this.client.subscribe<T>(
      { query, variables },
      {
        next: (value) => {
          if (value.errors) this.errors.push(...value.errors);
          else this.events.push(value.data as T);
          this.wake();
        },
        error: (err) => this.fail(err),
        complete: () => {
          this.completed = true;
          this.wake();
        },
      },
    );
  }

  private fail(err: unknown): void {
    this.errors.push(err);
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when `predicate` holds for the collected state, or rejects after `timeoutMs`. */
  async until(predicate: (s: this) => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; events: ${JSON.stringify(this.events)}; errors: ${JSON.stringify(this.errors)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Stops this subscription (graphql-ws `complete`), keeping the socket open. */
  unsubscribe(): void {
    this.dispose?.();
    this.dispose = null;
  }

  async close(): Promise<void> {
    this.dispose?.();
    await this.client.dispose();
  }
}

export const PAYMENT_STATUS_SUBSCRIPTION = `subscription($orderId: ID!) {
  paymentStatusChanged(orderId: $orderId) {
    orderId orderNo orderStatus paymentId paymentNo paymentStatus channel totalAmount paidAmount refundedAmount occurredAt
  }
}`;
