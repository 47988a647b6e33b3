/**
 * A self-scheduling background task: runs `body`, waits the delay it returns, runs it
 * again, until stopped. `trigger()` runs it as soon as possible (a trigger while a run
 * is in progress makes exactly one more run follow). Runs never overlap, and `stop()`
 * resolves once the run in progress (if any) has finished, so nothing outlives the
 * service that owns the loop.
 */
export interface Loop {
  /** Starts the loop; the first run is after `delayMs` (0: now). */
  start(delayMs?: number): void;
  /** Runs the body as soon as possible. */
  trigger(): void;
  stop(): Promise<void>;
  readonly running: boolean;
}

export function createLoop(body: () => Promise<number>, onError: (err: unknown) => number): Loop {
  let timer: NodeJS.Timeout | undefined;
  let active = false;
  let inFlight: Promise<void> | undefined;
  let again = false;

  const schedule = (ms: number): void => {
    if (!active) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, Math.max(0, Math.min(ms, 2_147_483_647)));
  };

  function run(): void {
    timer = undefined;
    if (!active || inFlight) return;
    again = false;
    inFlight = (async () => {
      let next: number;
      try {
        next = await body();
      } catch (err) {
        next = onError(err);
      }
      inFlight = undefined;
      schedule(again ? 0 : next);
    })();
  }

  return {
    start(delayMs = 0) {
      if (active) return;
      active = true;
      schedule(delayMs);
    },
    trigger() {
      if (!active) return;
      if (inFlight) again = true;
      else schedule(0);
    },
    async stop() {
      active = false;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inFlight;
    },
    get running() {
      return active;
    },
  };
}
