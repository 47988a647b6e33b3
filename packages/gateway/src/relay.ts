import type { Socket } from 'node:net';

export type CloseReason = 'client-closed' | 'upstream-closed' | 'client-error' | 'upstream-error' | 'idle' | 'half-open' | 'revoked' | 'expired' | 'held' | 'stopped';

/**
 * Relays bytes both ways between an authenticated client and its target: `pipe` with
 * backpressure (a side that cannot keep up pauses the other; at most one high-water mark
 * plus one read is buffered per direction), an idle timeout, a bound on half-open
 * connections, and teardown of both sides on the first error or close. `onEnd` runs
 * exactly once.
 */
export function relay(
  client: Socket,
  upstream: Socket,
  opts: { idleTimeoutMs: number; halfOpenMs: number; onEnd: (reason: CloseReason) => void },
): (reason: CloseReason) => void {
  let done = false;
  let halfTimer: NodeJS.Timeout | undefined;
  const end = (reason: CloseReason): void => {
    if (done) return;
    done = true;
    clearTimeout(halfTimer);
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.destroy();
    upstream.destroy();
    opts.onEnd(reason);
  };
  const halfOpen = (): void => {
    halfTimer ??= setTimeout(() => end('half-open'), opts.halfOpenMs);
    halfTimer.unref();
  };
  client.setTimeout(opts.idleTimeoutMs, () => end('idle'));
  client.on('error', () => end('client-error'));
  upstream.on('error', () => end('upstream-error'));
  client.on('close', () => end('client-closed'));
  upstream.on('close', () => end('upstream-closed'));
  client.on('end', halfOpen);
  upstream.on('end', halfOpen);
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
  return end;
}
