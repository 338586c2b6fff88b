import type { IncomingMessage } from 'node:http';
import { createSourceEventStream, execute, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { CloseCode, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../logger';

/**
 * graphql-ws on a `ws` server, shaped for many held subscriptions.
 *
 * The protocol is graphql-ws's own (`makeServer`); the glue to `ws` is graphql-ws's `useServer` (graphql-ws/use/ws)
 * written out here, with the same keep-alive pings and close codes, for memory: useServer's message listener is an
 * async function awaiting the protocol handler, which for a subscribe message returns only when the subscription
 * ends, so every held subscription kept the received Buffer and a suspended frame (about 0.7 KB each in heap
 * snapshots; README "Performance"). Here the listener hands the text on and returns. Errors go to the service's log
 * and close the socket with 4500, without the error's text.
 */
export interface WsExtra {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
}

export function serveGraphqlWs<E extends Record<PropertyKey, unknown>>(
  options: ServerOptions<Record<string, unknown> | undefined, WsExtra & Partial<E>>,
  wss: WebSocketServer,
  log: Logger,
  keepAliveMs = 12_000,
): { dispose(): Promise<void> } {
  const server = makeServer(options);
  wss.options.handleProtocols = handleProtocols;
  wss.once('error', (err) => {
    log.error({ err }, 'websocket server error');
    for (const client of wss.clients) client.close(CloseCode.InternalServerError, 'Internal server error');
  });
  wss.on('connection', (socket, request) => {
    const fail = (err: unknown) => {
      log.error({ err }, 'graphql-ws failed on a socket');
      socket.close(CloseCode.InternalServerError, 'Internal server error');
    };
    socket.once('error', fail);
    let pongWait: NodeJS.Timeout | null = null;
    const pings = setInterval(() => {
      if (socket.readyState !== socket.OPEN) return;
      pongWait = setTimeout(() => socket.terminate(), keepAliveMs);
      socket.once('pong', () => {
        if (pongWait) clearTimeout(pongWait);
        pongWait = null;
      });
      socket.ping();
    }, keepAliveMs);
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (err) => (err ? reject(err) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        // Not async, and the Buffer is not kept: the handler's promise lives as long as the subscription.
        onMessage: (handle) => socket.on('message', (data) => void handle(String(data)).catch(fail)),
      },
      { socket, request } as WsExtra & Partial<E>,
    );
    socket.once('close', (code, reason) => {
      if (pongWait) clearTimeout(pongWait);
      clearInterval(pings);
      void closed(code, String(reason)).catch(fail);
    });
  });
  return {
    async dispose() {
      for (const client of wss.clients) client.close(1001, 'Going away');
      wss.removeAllListeners();
      await new Promise<void>((resolve, reject) => wss.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/**
 * graphql-js's `subscribe` for graphql-ws, with the source stream mapped by a small class instead of graphql-js's
 * `mapAsyncIterator`.
 *
 * Written by hand for memory: every held subscription keeps its mapped iterator for its whole life, and graphql-js 16
 * builds that from an object literal with six closures, their scope, a suspended async `next` and a method name
 * allocated per instance ("[Symbol.asyncIterator]"): about 0.9 KB of heap per held subscription in snapshots (README,
 * "Performance"). The behaviour is graphql-js's: each source event is executed with the event as the root value; an
 * execution that throws closes the source and rethrows; `return` closes the source.
 */
export async function subscribe(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  if (!isAsyncIterable(stream)) return stream;
  return new ExecutedEvents(stream[Symbol.asyncIterator](), args);
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === 'function';
}

export class ExecutedEvents implements AsyncIterableIterator<ExecutionResult> {
  constructor(
    private readonly source: AsyncIterator<unknown>,
    private readonly args: ExecutionArgs,
  ) {}

  next(): Promise<IteratorResult<ExecutionResult>> {
    return this.source.next().then((r) => this.map(r));
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    if (!this.source.return) return Promise.resolve({ value: undefined, done: true });
    return this.source.return().then((r) => this.map(r));
  }

  async throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
    if (this.source.throw) return this.map(await this.source.throw(error));
    await this.closeSource();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private async map(r: IteratorResult<unknown>): Promise<IteratorResult<ExecutionResult>> {
    if (r.done) return r;
    try {
      return { value: await execute({ ...this.args, rootValue: r.value }), done: false };
    } catch (err) {
      await this.closeSource();
      throw err;
    }
  }

  private async closeSource(): Promise<void> {
    try {
      await this.source.return?.();
    } catch {
      // Keep the original error when closing the source also fails.
    }
  }
}
