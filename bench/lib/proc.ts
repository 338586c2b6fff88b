import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/** Clock ticks per second of /proc CPU counters (USER_HZ, 100 on Linux x86-64). */
const CLK_TCK = 100;

/** User + system CPU time of a process so far, in milliseconds (/proc/<pid>/stat utime + stime). */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Resident set size of a process in bytes (/proc/<pid>/status VmRSS). */
export function processRssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Open file descriptors of a process (sockets included). */
export function processFdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

export interface MachineCpu {
  /** Busy CPU time of all cores so far, ms. */
  busyMs: number;
  /** Idle (incl. iowait) CPU time of all cores so far, ms. */
  idleMs: number;
}

/** Machine-wide CPU counters from /proc/stat. */
export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = v as [number, number, number, number, number, number, number, number];
  const busy = user + nice + system + irq + softirq + (steal ?? 0);
  return { busyMs: (busy * 1000) / CLK_TCK, idleMs: ((idle + iowait) * 1000) / CLK_TCK };
}

/** A CPU meter over one phase: the server's, this process's, and the whole machine's CPU time. */
export class CpuMeter {
  private readonly serverStart: number;
  private readonly selfStart: NodeJS.CpuUsage;
  private readonly machineStart: MachineCpu;
  private readonly wallStart = performance.now();

  constructor(private readonly serverPid: number, private readonly extraPids: number[] = []) {
    this.serverStart = processCpuMs(serverPid);
    this.extraStart = extraPids.map(processCpuMs);
    this.selfStart = process.cpuUsage();
    this.machineStart = machineCpu();
  }

  private readonly extraStart: number[];

  /** CPU milliseconds spent since the start: server process, client processes (this one + extras), machine. */
  stop(): { serverMs: number; clientMs: number; machineBusyMs: number; wallMs: number; cores: number } {
    const self = process.cpuUsage(this.selfStart);
    const m = machineCpu();
    const extra = this.extraPids.reduce((sum, pid, i) => sum + (processCpuMs(pid) - this.extraStart[i]!), 0);
    return {
      serverMs: processCpuMs(this.serverPid) - this.serverStart,
      clientMs: (self.user + self.system) / 1000 + extra,
      machineBusyMs: m.busyMs - this.machineStart.busyMs,
      wallMs: performance.now() - this.wallStart,
      cores: os.cpus().length,
    };
  }
}

/** Fraction of the machine's CPU that is idle over `ms` (recorded before a run: other work skews results). */
export async function measureIdle(ms = 1000): Promise<number> {
  const a = machineCpu();
  await new Promise((r) => setTimeout(r, ms));
  const b = machineCpu();
  const busy = b.busyMs - a.busyMs;
  const idle = b.idleMs - a.idleMs;
  return idle / Math.max(1, busy + idle);
}

export interface MachineInfo {
  hostname: string;
  cpuModel: string;
  cores: number;
  memoryGb: number;
  kernel: string;
  node: string;
  postgres?: string;
  redis?: string;
  fdLimit?: string;
  gitCommit?: string;
  gitDirty?: boolean;
  idleBefore?: number;
  loadavgBefore?: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  const info: MachineInfo = {
    hostname: os.hostname(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    loadavgBefore: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
  try {
    info.fdLimit = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  } catch {
    /* unknown */
  }
  try {
    info.gitCommit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    info.gitDirty = execFileSync('git', ['status', '--porcelain'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
  } catch {
    /* not a git checkout */
  }
  return info;
}
