/**
 * Background load in its own process (so the probe's timing in the bench process is not disturbed): open-loop
 * createOrder at a fixed rate. Method `run` { url, rate, durationMs, tag, customers } answers a summary.
 */
import { customerTokens, createOrderRequest } from './requests';
import { openLoop } from './open-loop';
import { serveRpc } from './rpc';
import { summarize } from './stats';

serveRpc({
  async run(p: { url: string; rate: number; durationMs: number; tag: string; customers: number }) {
    const tokens = customerTokens(p.customers, `${p.tag}-c`);
    const r = await openLoop({ url: p.url, rate: p.rate, durationMs: p.durationMs, next: (i) => createOrderRequest(tokens, p.tag, i) });
    const { latencies, ...rest } = r;
    return { ...rest, latency: summarize(latencies) };
  },
});
