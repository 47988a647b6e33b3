// What a benchmark reads of a process and of the machine, from /proc.
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/** User + system CPU time of `pid` so far, in clock ticks (see clockTicksPerSecond). */
export async function cpuTicks(pid) {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** Peak resident set size (VmHWM) of `pid`, bytes. */
export async function hwm(pid) {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(s)?.[1] ?? NaN) * 1024;
}

/** Clock ticks per second, the unit of cpuTicks. */
export const clockTicksPerSecond = () => Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** The 1, 5 and 15 minute load averages. */
export const loadavg = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).map(Number);
