/** What every Outpost service returns from its `createXxx(config, deps)` factory. */
export interface Service {
  /** Binds sockets and resolves when ready. Idempotent. */
  start(): Promise<void>;
  /** Closes sockets and flushes state. Idempotent; safe before start. */
  stop(): Promise<void>;
}

/**
 * Wraps start/stop bodies so that both are idempotent and never overlap: a second
 * start while starting waits for the first; stop waits for a start in progress; a
 * start after stop starts again.
 */
export function lifecycle(impl: { start(): Promise<void>; stop(): Promise<void> }): Service {
  let state: 'stopped' | 'started' = 'stopped';
  let pending: Promise<void> = Promise.resolve();
  const run = (target: 'started' | 'stopped', body: () => Promise<void>): Promise<void> => {
    pending = pending
      .catch(() => undefined)
      .then(async () => {
        if (state === target) return;
        if (target === 'started') {
          try {
            await body();
          } catch (err) {
            // Release whatever the failed start bound before reporting it.
            await impl.stop().catch(() => undefined);
            throw err;
          }
          state = 'started';
        } else {
          state = 'stopped';
          await body();
        }
      });
    return pending;
  };
  return {
    start: () => run('started', () => impl.start()),
    stop: () => run('stopped', () => impl.stop()),
  };
}
