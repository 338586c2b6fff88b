import { fork, spawn, type ChildProcess } from 'node:child_process';

/**
 * Request/response over a child process's IPC channel: `{ rpc, method, params }` → `{ rpc, result | error }`.
 * Used for the bench's own helper processes (swarm, load generator, simulator) and for the probe preloaded into the
 * service and floor processes (memory after GC, SQL statement counters).
 */

interface Request {
  rpc: number;
  method: string;
  params?: unknown;
}
interface Response {
  rpc: number;
  result?: unknown;
  error?: string;
}

export class Rpc {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private output = '';
  private readonly outputListeners = new Set<(chunk: string) => void>();
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess, readonly label: string) {
    child.on('message', (m: Response) => {
      if (!m || typeof m.rpc !== 'number') return;
      const p = this.pending.get(m.rpc);
      if (!p) return;
      this.pending.delete(m.rpc);
      if (m.error !== undefined) p.reject(new Error(`${label}: ${m.error}`));
      else p.resolve(m.result);
    });
    const keep = (d: Buffer) => {
      this.output += d.toString();
      for (const l of this.outputListeners) l(d.toString());
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
      if (process.env.BENCH_VERBOSE) process.stderr.write(`[${label}] ${d.toString()}`);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        for (const p of this.pending.values()) p.reject(new Error(`${label} exited (${code ?? signal})\n${this.tail()}`));
        this.pending.clear();
        resolve(code);
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Calls `listener` with the child's output (stdout and stderr chunks) from now on; returns the way to stop. */
  onOutput(listener: (chunk: string) => void): () => void {
    this.outputListeners.add(listener);
    return () => void this.outputListeners.delete(listener);
  }

  tail(chars = 4000): string {
    return this.output.slice(-chars);
  }

  call<T = unknown>(method: string, params?: unknown, timeoutMs = 600_000): Promise<T> {
    if (!this.alive) return Promise.reject(new Error(`${this.label} is not running\n${this.tail()}`));
    const rpc = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rpc);
        reject(new Error(`${this.label}: ${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(rpc, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ rpc, method, params } satisfies Request);
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (!this.alive) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Forks one of the bench's compiled helper modules (dist/bench/…) with an IPC channel. */
export function forkHelper(modulePath: string, label: string, env: Record<string, string> = {}, execArgv: string[] = []): Rpc {
  const child = fork(modulePath, [], {
    env: { ...process.env, ...env },
    execArgv,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  return new Rpc(child, label);
}

/** Spawns `node [execArgv] script` with an IPC channel and only the given environment (plus PATH). */
export function spawnNode(script: string, label: string, env: Record<string, string>, execArgv: string[] = []): Rpc {
  const child = spawn(process.execPath, [...execArgv, script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  return new Rpc(child, label);
}

/** Child side: answers the parent's calls with `handlers`. */
export function serveRpc(handlers: Record<string, (params: any) => unknown>): void {
  if (!process.send) throw new Error('serveRpc needs an IPC channel (fork or spawn with "ipc")');
  process.on('message', async (m: Request) => {
    if (!m || typeof m.rpc !== 'number' || typeof m.method !== 'string') return;
    const handler = handlers[m.method];
    let reply: Response;
    try {
      if (!handler) throw new Error(`unknown method ${m.method}`);
      reply = { rpc: m.rpc, result: await handler(m.params) };
    } catch (err) {
      reply = { rpc: m.rpc, error: (err as Error)?.stack ?? String(err) };
    }
    process.send!(reply);
  });
  // The parent going away ends the helper.
  process.on('disconnect', () => process.exit(0));
}
