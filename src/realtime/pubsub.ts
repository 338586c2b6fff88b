import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Topic-routed publish/subscribe: in-process for one instance, Redis for many.
 *
 * Hand-written rather than @graphql-yoga/subscription because a subscriber must know when its subscription is live
 * (`ready`): the subscription resolver waits for it before reading the snapshot, so an event published in between is
 * never lost. Each topic is one Redis channel, subscribed while at least one local listener wants it, so a publish
 * costs the same whatever the number of other subscribers.
 */
export interface PubSub {
  publish(topic: string, payload: unknown): Promise<void>;
  /** Listen to a topic; resolves once the subscription is live everywhere (Redis confirmed it). */
  subscribe(topic: string, listener: (payload: unknown) => void): Promise<() => void>;
  /** Number of local topic subscriptions, for metrics. */
  readonly topicCount: number;
  ping(): Promise<void>;
  close(): Promise<void>;
}

class Listeners {
  private readonly byTopic = new Map<string, Set<(payload: unknown) => void>>();

  get size(): number {
    return this.byTopic.size;
  }

  /** Adds a listener; true when it is the topic's first. */
  add(topic: string, listener: (payload: unknown) => void): boolean {
    let set = this.byTopic.get(topic);
    const first = !set;
    if (!set) this.byTopic.set(topic, (set = new Set()));
    set.add(listener);
    return first;
  }

  /** Removes a listener; true when the topic has none left. */
  remove(topic: string, listener: (payload: unknown) => void): boolean {
    const set = this.byTopic.get(topic);
    if (!set) return false;
    set.delete(listener);
    if (set.size > 0) return false;
    this.byTopic.delete(topic);
    return true;
  }

  emit(topic: string, payload: unknown): void {
    const set = this.byTopic.get(topic);
    if (!set) return;
    for (const listener of [...set]) listener(payload);
  }
}

export class InProcessPubSub implements PubSub {
  private readonly listeners = new Listeners();

  get topicCount(): number {
    return this.listeners.size;
  }

  async publish(topic: string, payload: unknown): Promise<void> {
    // Round-trip through JSON so both implementations hand listeners the same shapes.
    const copy = JSON.parse(JSON.stringify(payload));
    queueMicrotask(() => this.listeners.emit(topic, copy));
  }

  async subscribe(topic: string, listener: (payload: unknown) => void): Promise<() => void> {
    this.listeners.add(topic, listener);
    return () => void this.listeners.remove(topic, listener);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}

export class RedisPubSub implements PubSub {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly listeners = new Listeners();
  /** Pending SUBSCRIBE per topic, so concurrent first subscribers wait for the same confirmation. */
  private readonly subscribing = new Map<string, Promise<unknown>>();

  constructor(url: string, private readonly log: Logger) {
    const options = { lazyConnect: false, maxRetriesPerRequest: 2, enableAutoPipelining: true };
    this.pub = new Redis(url, { ...options, connectionName: 'orders-pub' });
    this.sub = new Redis(url, { ...options, connectionName: 'orders-sub' });
    for (const c of [this.pub, this.sub]) c.on('error', (err) => this.log.warn({ err: err.message }, 'redis connection error'));
    this.sub.on('message', (channel: string, message: string) => {
      let payload: unknown;
      try {
        payload = JSON.parse(message);
      } catch {
        this.log.warn({ channel }, 'dropped a non-JSON pub/sub message');
        return;
      }
      this.listeners.emit(channel, payload);
    });
  }

  get topicCount(): number {
    return this.listeners.size;
  }

  async publish(topic: string, payload: unknown): Promise<void> {
    await this.pub.publish(topic, JSON.stringify(payload));
  }

  async subscribe(topic: string, listener: (payload: unknown) => void): Promise<() => void> {
    if (this.listeners.add(topic, listener)) {
      const pending = this.sub.subscribe(topic).finally(() => this.subscribing.delete(topic));
      this.subscribing.set(topic, pending);
    }
    await this.subscribing.get(topic);
    return () => {
      if (this.listeners.remove(topic, listener)) {
        this.sub.unsubscribe(topic).catch((err: Error) => this.log.warn({ err: err.message, topic }, 'unsubscribe failed'));
      }
    };
  }

  async ping(): Promise<void> {
    await this.pub.ping();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
  }
}
