/**
 * One process of the client swarm: holds many idle graphql-transport-ws subscriptions (several per socket, graphql-ws
 * multiplexes them) on raw `ws` sockets spread over several 127.0.0.x source addresses. A process may hold about
 * 20 000 open files, so large swarms use several processes (swarm.ts).
 *
 * Methods (IPC, see rpc.ts):
 * - `connect` { url, sockets: [{ token, orderIds }], localAddresses, window }: opens the sockets, subscribes each
 *   order (at most `window` subscribes waiting for their first event at once) and answers when every subscription
 *   has its snapshot: counts, failures and the epoch-ms interval it took.
 * - `watch` { orderId }: from now on, record the receive time of every later event of that order (any subscription).
 * - `receipts`: the recorded [version, epoch ms] pairs (and clears them).
 * - `stats`, `close`.
 */
import WebSocket from 'ws';
import { PAYMENT_STATUS_SUBSCRIPTION } from './gql-ws';
import { serveRpc } from './rpc';

interface SocketSpec {
  token: string;
  orderIds: string[];
}

interface Held {
  ws: WebSocket;
  subs: number;
  pending: Map<string, () => void>;
}

const held: Held[] = [];
let watched: string | null = null;
let receipts: Array<[number, number]> = [];
let unexpectedCloses = 0;
let messages = 0;
let subscriptionErrors = 0;
const now = () => performance.timeOrigin + performance.now();

function openSocket(url: string, token: string, localAddress: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'graphql-transport-ws', { localAddress, perMessageDeflate: false });
    const h: Held = { ws, subs: 0, pending: new Map() };
    let acked = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('connection_ack timeout'));
    }, 30_000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
    ws.on('error', (err) => {
      clearTimeout(timer);
      if (!acked) reject(err);
    });
    ws.on('close', () => {
      clearTimeout(timer);
      if (!acked) reject(new Error('closed before ack'));
      else if (!closing) unexpectedCloses++;
      for (const done of h.pending.values()) done();
      h.pending.clear();
    });
    ws.on('message', (data: Buffer) => {
      messages++;
      const text = data.toString();
      if (!acked) {
        if (text.includes('"connection_ack"')) {
          acked = true;
          clearTimeout(timer);
          resolve(h);
        }
        return;
      }
      if (h.pending.size) {
        const m = JSON.parse(text) as { id?: string; type: string };
        const done = m.id ? h.pending.get(m.id) : undefined;
        if (done) {
          if (m.type === 'error') subscriptionErrors++;
          h.pending.delete(m.id!);
          done();
          return;
        }
      }
      if (watched && text.includes(watched)) {
        const at = now();
        const m = JSON.parse(text) as { payload?: { data?: { paymentStatusChanged?: { version?: number; orderNo?: string } } } };
        const e = m.payload?.data?.paymentStatusChanged;
        // The bench's published events carry their sequence number in orderNo ("seq:<n>").
        const seq = e?.orderNo?.startsWith('seq:') ? Number(e.orderNo.slice(4)) : -1;
        receipts.push([seq, at]);
      } else if (text.includes('"ping"')) {
        h.ws.send('{"type":"pong"}');
      }
    });
  });
}

let closing = false;

serveRpc({
  async connect(p: { url: string; sockets: SocketSpec[]; localAddresses: string[]; window: number }) {
    const started = now();
    const errors: string[] = [];
    let failedSockets = 0;
    let established = 0;
    let failedSubs = 0;
    // Open sockets 50 at a time.
    const opened: Array<{ h: Held; spec: SocketSpec }> = [];
    for (let i = 0; i < p.sockets.length; i += 50) {
      const batch = p.sockets.slice(i, i + 50);
      const results = await Promise.allSettled(
        batch.map((spec, j) => openSocket(p.url, spec.token, p.localAddresses[(held.length + i + j) % p.localAddresses.length]!)),
      );
      results.forEach((r, j) => {
        if (r.status === 'fulfilled') {
          held.push(r.value);
          opened.push({ h: r.value, spec: batch[j]! });
        } else {
          failedSockets++;
          if (errors.length < 5) errors.push(String(r.reason?.message ?? r.reason));
        }
      });
    }
    const connectedAt = now();
    // Subscribe with a bounded number waiting for their snapshot.
    const queue: Array<{ h: Held; orderId: string }> = [];
    for (const { h, spec } of opened) for (const orderId of spec.orderIds) queue.push({ h, orderId });
    let next = 0;
    let seq = 0;
    const errorsBefore = subscriptionErrors;
    await new Promise<void>((resolve) => {
      let inFlight = 0;
      const pump = () => {
        while (inFlight < p.window && next < queue.length) {
          const { h, orderId } = queue[next++]!;
          if (h.ws.readyState !== WebSocket.OPEN) {
            failedSubs++;
            continue;
          }
          const id = `s${++seq}`;
          inFlight++;
          h.pending.set(id, () => {
            inFlight--;
            established++;
            h.subs++;
            pump();
          });
          h.ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query: PAYMENT_STATUS_SUBSCRIPTION, variables: { orderId } } }));
        }
        if (inFlight === 0 && next >= queue.length) resolve();
      };
      pump();
    });
    const newErrors = subscriptionErrors - errorsBefore;
    return {
      sockets: opened.length,
      failedSockets,
      subscriptions: established - newErrors,
      failedSubscriptions: failedSubs + newErrors,
      startedAt: started,
      connectedAt,
      finishedAt: now(),
      errors,
    };
  },
  watch(p: { orderId: string | null }) {
    watched = p.orderId;
    receipts = [];
    return true;
  },
  receipts() {
    const r = receipts;
    receipts = [];
    return r;
  },
  stats() {
    return {
      sockets: held.filter((h) => h.ws.readyState === WebSocket.OPEN).length,
      subscriptions: held.reduce((s, h) => s + h.subs, 0),
      unexpectedCloses,
      messages,
      subscriptionErrors,
    };
  },
  async close() {
    closing = true;
    for (const h of held) h.ws.terminate();
    held.length = 0;
    return true;
  },
});
