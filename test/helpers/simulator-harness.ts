/**
 * The harness the adapter integration tests (`test/integration/*-adapter.test.ts`) share: one Express app on
 * 127.0.0.1 and a random port that mounts provider simulators, and a notify receiver that records every delivery
 * per tag (`<path>/:tag`) and answers the replies a test scripted for that tag before the provider's default.
 *
 * Simulators are mounted through closures because a simulator needs the origin, known only once the server
 * listens: create the harness, register the receiver, mounts and any misbehaving endpoints on `app`, `listen()`,
 * then create the simulators with `publicBaseUrl: origin`.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type Response, type Router } from 'express';

/** One notification as the merchant's notify URL received it. */
export interface ReceivedNotification {
  headers: Record<string, string | undefined>;
  rawBody: Buffer;
}

export interface NotifyReceiver<Reply, R extends ReceivedNotification> {
  /** Deliveries received per tag, oldest first. */
  readonly inbox: Map<string, R[]>;
  /** Per tag, replies to give (one each, in order) before the default one. */
  readonly scripted: Map<string, Reply[]>;
}

export class SimulatorHarness {
  readonly app: Express = express();
  /** `http://127.0.0.1:<port>`, once `listen()` resolved. */
  origin = '';
  private server: Server | undefined;

  /** Mounts the router `router()` returns at request time (nothing mounted yet: the request falls through). */
  mount(path: string, router: () => Router | undefined): void {
    this.app.use(path, (req, res, next) => {
      const r = router();
      return r ? r(req, res, next) : next();
    });
  }

  /**
   * `POST <path>/:tag` records the delivery under `tag` and answers with `reply(res, next scripted reply for the tag
   * or undefined)`. `extend` adds what a test wants to read off each delivery (e.g. the parsed event).
   */
  notifyReceiver<Reply, R extends ReceivedNotification = ReceivedNotification>(
    path: string,
    reply: (res: Response, scripted: Reply | undefined) => void,
    extend: (r: ReceivedNotification) => R = (r) => r as R,
  ): NotifyReceiver<Reply, R> {
    const inbox = new Map<string, R[]>();
    const scripted = new Map<string, Reply[]>();
    this.app.post(`${path}/:tag`, express.raw({ type: '*/*' }), (req, res) => {
      const tag = String(req.params.tag);
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      inbox.set(tag, [...(inbox.get(tag) ?? []), extend({ headers, rawBody })]);
      reply(res, scripted.get(tag)?.shift());
    });
    return { inbox, scripted };
  }

  /** Starts listening on 127.0.0.1 and a random port; resolves the origin. */
  async listen(): Promise<string> {
    const server = this.app.listen(0, '127.0.0.1');
    this.server = server;
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    this.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.origin;
  }

  /** POSTs `body` as JSON to `origin + path`; answers the status and the parsed JSON body. */
  postJson = async (path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${this.origin}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  /** Drops open connections and stops listening. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** A port on 127.0.0.1 that was free a moment ago and nothing listens on now: connections to it are refused. */
export async function closedPort(): Promise<number> {
  const closed = express().listen(0, '127.0.0.1');
  await new Promise<void>((r) => closed.once('listening', () => r()));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  return port;
}

/** Polls `probe` every 10 ms until it answers something truthy; fails after `timeoutMs`. */
export async function waitFor<T>(probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What `p` rejects with; fails when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
