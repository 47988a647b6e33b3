import { EventEmitter } from 'node:events';
import type { CliIo } from '@outpost/appliance';

/** A CliIo that records what a command prints. */
export function recordingIo(cwd: string, env: NodeJS.ProcessEnv = {}): CliIo & { stdout: string[]; stderr: string[]; signals: EventEmitter } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { out: (l) => void stdout.push(l), err: (l) => void stderr.push(l), env, cwd, signals: new EventEmitter(), stdout, stderr };
}
