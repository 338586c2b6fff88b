import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';
import { verifyBearer } from './auth';

/**
 * The realtime floor: a raw `ws` server on the same port and path, speaking just enough graphql-transport-ws for the
 * same clients (connection_init with a bearer token → connection_ack; subscribe → one pre-serialized `next` with the
 * order's id; complete; ping → pong), and ONE shared Redis subscriber: each topic (`order:<id>`) is SUBSCRIBEd on
 * it while a local socket wants it, and a message is written as a pre-serialized string (no JSON parse, no GraphQL
 * execution) to each subscribed socket. The bookkeeping per held subscription is one entry in a topic map.
 */

interface Sub {
  ws: WebSocket;
  id: string;
}

interface Topic {
  subs: Sub[];
  ready: Promise<unknown>;
}

export function attachRealtimeFloor(server: Server, redisUrl: string, jwtSecret: string) {
  const options = { lazyConnect: false, maxRetriesPerRequest: 2, enableAutoPipelining: true };
  const sub = new Redis(redisUrl, { ...options, connectionName: 'floor-sub' });
  const topics = new Map<string, Topic>();

  sub.on('message', (channel: string, message: string) => {
    const t = topics.get(channel);
    if (!t) return;
    for (const s of t.subs) {
      s.ws.send(`{"id":${JSON.stringify(s.id)},"type":"next","payload":{"data":{"paymentStatusChanged":${message}}}}`);
    }
  });

  const wss = new WebSocketServer({ server, path: '/graphql', maxPayload: 64 * 1024 });
  wss.on('connection', (ws) => {
    let acked = false;
    const mine = new Map<string, string>(); // subscription id → topic

    const remove = (id: string) => {
      const topic = mine.get(id);
      if (!topic) return;
      mine.delete(id);
      const t = topics.get(topic);
      if (!t) return;
      const i = t.subs.findIndex((s) => s.ws === ws && s.id === id);
      if (i >= 0) t.subs.splice(i, 1);
      if (t.subs.length === 0) {
        topics.delete(topic);
        void sub.unsubscribe(topic).catch(() => undefined);
      }
    };

    ws.on('message', (data) => {
      let m: { type?: string; id?: string; payload?: { authorization?: string; variables?: { orderId?: string } } };
      try {
        m = JSON.parse(data.toString());
      } catch {
        ws.close(4400, 'invalid message');
        return;
      }
      switch (m.type) {
        case 'connection_init': {
          if (!verifyBearer(jwtSecret, m.payload?.authorization)) return void ws.close(4403, 'Forbidden');
          acked = true;
          ws.send('{"type":"connection_ack"}');
          return;
        }
        case 'ping':
          ws.send('{"type":"pong"}');
          return;
        case 'subscribe': {
          if (!acked) return void ws.close(4401, 'Unauthorized');
          const id = String(m.id);
          const orderId = String(m.payload?.variables?.orderId ?? '');
          const topic = `order:${orderId}`;
          mine.set(id, topic);
          let t = topics.get(topic);
          if (!t) {
            t = { subs: [], ready: sub.subscribe(topic) };
            topics.set(topic, t);
          }
          t.subs.push({ ws, id });
          t.ready.then(
            () => {
              if (mine.get(id) !== topic) return;
              ws.send(
                `{"id":${JSON.stringify(id)},"type":"next","payload":{"data":{"paymentStatusChanged":{"orderId":${JSON.stringify(orderId)},"orderStatus":"PAYING"}}}}`,
              );
            },
            () => ws.close(1011, 'subscribe failed'),
          );
          return;
        }
        case 'complete':
          remove(String(m.id));
          return;
        default:
          return;
      }
    });
    ws.on('close', () => {
      for (const id of [...mine.keys()]) remove(id);
    });
  });

  return {
    ready: () => sub.ping(),
    subscriptions: () => {
      let n = 0;
      for (const t of topics.values()) n += t.subs.length;
      return n;
    },
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await sub.quit().catch(() => undefined);
    },
  };
}
