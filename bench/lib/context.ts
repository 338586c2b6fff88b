import type { DbFactory, Driver } from './db';
import type { BenchContext } from './targets';

export const WORKLOADS = ['createOrder', 'callback', 'screen', 'capacity', 'fanout', 'flow'] as const;
export type Workload = (typeof WORKLOADS)[number];

export interface Options {
  workloads: Workload[];
  dbs: Driver[];
  quick: boolean;
  /** Seconds per measured phase. */
  durationSec: number;
  /** Held-subscription sizes (screen, capacity, fanout). */
  sizes: number[];
  /** Max-throughput trials per target (floor and service alternate); the median is reported. */
  repeat: number;
  /** Concurrent customers of the whole-flow workload. */
  concurrency: number[];
  subsPerSocket: number;
  swarmProcesses: number;
  outDir: string;
  /** Write the table into bench/README.md's "Latest results" section. */
  updateReadme: boolean;
}

export interface Ctx extends BenchContext {
  opts: Options;
  dbs: DbFactory;
  /** Floor's max createOrder throughput per driver (measured by createOrder, or calibrated when needed). */
  floorCreateOrderMax: Partial<Record<Driver, number>>;
  serviceCreateOrderMax: Partial<Record<Driver, number>>;
  log(message: string): void;
}

/** One line of the results table: a metric for the floor and the service, and their ratio. */
export interface Row {
  metric: string;
  unit: string;
  floor?: number;
  service?: number;
  /** service ÷ floor unless stated otherwise (`ratioKind`). */
  ratio?: number;
  ratioKind?: 'service/floor' | 'service-floor' | 'n/a';
  /** Server CPU per operation, ms. */
  floorCpuMs?: number;
  serviceCpuMs?: number;
  note?: string;
}

export interface TargetCheck {
  workload: Workload;
  db: Driver | 'all';
  name: string;
  target: string;
  measured: string;
  met: boolean | null;
}

export interface WorkloadResult {
  workload: Workload;
  db: Driver;
  rows: Row[];
  checks: TargetCheck[];
  details: Record<string, unknown>;
  error?: string;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
