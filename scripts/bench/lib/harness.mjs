// What a load benchmark needs around its measurements (bench:tftp, bench:netboot): a log
// under its tag, `sh`, child processes killed and network namespaces deleted however the
// run ends (exit, SIGINT/SIGTERM, the deadline), the check for root and commands, and
// children started and stopped by what they print.
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** `ip netns exec NS ARGV…` */
export const inNs = (ns, argv) => ['ip', 'netns', 'exec', ns, ...argv];

/** Stops a child (SIGTERM, then SIGKILL after `graceMs`, 5 s) and waits for it to exit. */
export async function stopChild(child, signal = 'SIGTERM', graceMs = 5_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

/**
 * Call once, from the benchmark's top level: installs the exit and signal handlers and
 * the deadline (`deadlineMs`), after which the run is stopped with exit code 2.
 * `namespaces` are deleted at the end whether or not they were made.
 */
export function benchHarness({ tag, namespaces = [], deadlineMs }) {
  const log = (...a) => console.error(`[${tag}]`, ...a);
  /** A command's stdout (throws when it fails or runs past 30 s). */
  const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000, ...opts }).toString();
  const children = new Set();
  let cleaned = false;
  function cleanup() {
    if (cleaned) return;
    cleaned = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const ns of namespaces) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        // not there
      }
    }
  }
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => (cleanup(), process.exit(130)));
  setTimeout(() => {
    log(`did not finish within ${deadlineMs / 60_000} min; stopping`);
    cleanup();
    process.exit(2);
  }, deadlineMs).unref();

  /** Exits 1 with a `<tag> {"skipped":true,"missing":[…]}` line unless root (`rootFor` says why) and `commands` are there. */
  function need({ rootFor, commands }) {
    const missing = [];
    if (process.getuid?.() !== 0) missing.push(`root (${rootFor})`);
    for (const c of commands) {
      try {
        sh('sh', ['-c', `command -v ${c}`]);
      } catch {
        missing.push(c);
      }
    }
    if (missing.length) {
      console.log(`${tag} ${JSON.stringify({ skipped: true, missing })}`);
      log(`needs ${missing.join(', ')}`);
      process.exit(1);
    }
  }

  /** Kills `child` if it is still running when the benchmark ends. */
  function track(child) {
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
  }

  /**
   * Spawns `argv` and resolves with `{ child, err }` once `ready(line)` holds for a line
   * it printed (stdout or stderr); `onLine` gets every stdout line. Rejects when it
   * exits or is not ready within `timeoutMs`, with the end of its stderr.
   */
  function startChild(argv, { name, ready, onLine, timeoutMs = 20_000 }) {
    const child = track(spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] }));
    let err = '';
    child.stdin.on('error', () => undefined);
    const out = createInterface({ input: child.stdout });
    const errLines = createInterface({ input: child.stderr });
    return new Promise((resolveStart, reject) => {
      let isReady = false;
      const t = setTimeout(() => reject(new Error(`${name} not ready in ${timeoutMs} ms: ${err}`)), timeoutMs);
      const check = (line) => {
        if (!isReady && ready(line)) {
          isReady = true;
          clearTimeout(t);
          resolveStart({ child, err: () => err });
        }
      };
      out.on('line', (line) => {
        check(line);
        onLine?.(line);
      });
      errLines.on('line', (line) => {
        err = `${err}${line}\n`.slice(-4000);
        check(line);
      });
      child.once('exit', (code) => {
        clearTimeout(t);
        if (!isReady) reject(new Error(`${name} exited (${code}): ${err}`));
      });
    });
  }

  return { log, sh, cleanup, need, track, startChild };
}
