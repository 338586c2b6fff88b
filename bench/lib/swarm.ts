import { join } from 'node:path';
import { forkHelper, type Rpc } from './rpc';

/** Source addresses the swarm's sockets are spread over (any 127.0.0.0/8 address is local on Linux). */
export const SOURCE_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

export interface SocketSpec {
  token: string;
  orderIds: string[];
}

export interface GrowResult {
  sockets: number;
  subscriptions: number;
  failedSockets: number;
  failedSubscriptions: number;
  /** From the first socket opened to the last snapshot received, ms. */
  durationMs: number;
  /** Subscriptions established per second (snapshot received), sockets already open. */
  subscribesPerSec: number;
  errors: string[];
}

interface ConnectAnswer {
  sockets: number;
  failedSockets: number;
  subscriptions: number;
  failedSubscriptions: number;
  startedAt: number;
  connectedAt: number;
  finishedAt: number;
  errors: string[];
}

/** The client swarm: several processes holding idle subscriptions (swarm-process.ts). */
export class Swarm {
  private constructor(private readonly procs: Rpc[]) {}

  static start(processes: number): Swarm {
    return new Swarm(
      Array.from({ length: processes }, (_, i) => forkHelper(join(__dirname, 'swarm-process.js'), `swarm-${i}`, {}, ['--max-old-space-size=1024'])),
    );
  }

  get pids(): number[] {
    return this.procs.map((p) => p.pid);
  }

  /** Adds sockets (round-robin over the processes) and waits until every subscription has its first event. */
  async grow(url: string, sockets: SocketSpec[], windowPerProcess = 64): Promise<GrowResult> {
    const parts: SocketSpec[][] = this.procs.map(() => []);
    sockets.forEach((s, i) => parts[i % parts.length]!.push(s));
    const answers = await Promise.all(
      this.procs.map((p, i) =>
        parts[i]!.length
          ? p.call<ConnectAnswer>('connect', { url, sockets: parts[i], localAddresses: SOURCE_ADDRESSES, window: windowPerProcess }, 900_000)
          : Promise.resolve(null),
      ),
    );
    const real = answers.filter((a): a is ConnectAnswer => a !== null);
    const started = Math.min(...real.map((a) => a.startedAt));
    const connected = Math.max(...real.map((a) => a.connectedAt));
    const finished = Math.max(...real.map((a) => a.finishedAt));
    const subscriptions = real.reduce((s, a) => s + a.subscriptions, 0);
    return {
      sockets: real.reduce((s, a) => s + a.sockets, 0),
      subscriptions,
      failedSockets: real.reduce((s, a) => s + a.failedSockets, 0),
      failedSubscriptions: real.reduce((s, a) => s + a.failedSubscriptions, 0),
      durationMs: real.length ? finished - started : 0,
      subscribesPerSec: real.length ? (subscriptions * 1000) / Math.max(1, finished - connected) : NaN,
      errors: real.flatMap((a) => a.errors).slice(0, 5),
    };
  }

  async watch(orderId: string | null): Promise<void> {
    await Promise.all(this.procs.map((p) => p.call('watch', { orderId })));
  }

  async receipts(): Promise<Array<[number, number]>> {
    const all = await Promise.all(this.procs.map((p) => p.call<Array<[number, number]>>('receipts')));
    return all.flat();
  }

  async stats(): Promise<{ sockets: number; subscriptions: number; unexpectedCloses: number; subscriptionErrors: number }> {
    const all = await Promise.all(
      this.procs.map((p) => p.call<{ sockets: number; subscriptions: number; unexpectedCloses: number; subscriptionErrors: number }>('stats')),
    );
    return {
      sockets: all.reduce((s, a) => s + a.sockets, 0),
      subscriptions: all.reduce((s, a) => s + a.subscriptions, 0),
      unexpectedCloses: all.reduce((s, a) => s + a.unexpectedCloses, 0),
      subscriptionErrors: all.reduce((s, a) => s + a.subscriptionErrors, 0),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.call('close', undefined, 30_000).catch(() => undefined)));
    await Promise.all(this.procs.map((p) => p.stop(5000)));
  }
}
