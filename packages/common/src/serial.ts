/** Queues async work to run one at a time: see {@link serialRunner}. */
export type SerialRunner = <T>(fn: () => Promise<T>) => Promise<T>;

/**
 * A queue of async work run one at a time, in the order given: each function starts once the
 * one before it settled, and a failure does not stop the next (the caller gets it). Services
 * whose read-modify-write steps must not interleave (a package's versions, a boot timeline,
 * an audit chain) put each step through one.
 */
export function serialRunner(): SerialRunner {
  let chain: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  };
}
