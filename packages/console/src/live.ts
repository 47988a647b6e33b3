import { ApiError } from './api';
import { endSessionOn401 } from './session';
import { backoffMs, readEvents } from './sse';
import type { LiveSnapshot } from './types';

/** What the live feed has told so far. */
export interface LiveState {
  snapshot: LiveSnapshot | undefined;
  connected: boolean;
  /** Snapshots received (pages watch it to refetch details). */
  updates: number;
  at: number;
  error?: string;
}

type Listener = (s: LiveState) => void;

const MAX_RETRIES = 1_000;

/**
 * The console's live feed: `GET /api/v1/console/events` (server-sent events, with the
 * session cookie). Reconnects with backoff (1 s doubling to 15 s, at most
 * {@link MAX_RETRIES} times in a row); a 401 signs the tab out, a 403 (no
 * `console.read`) stops it.
 */
export class Live {
  #state: LiveState = { snapshot: undefined, connected: false, updates: 0, at: 0 };
  readonly #listeners = new Set<Listener>();
  #abort: AbortController | undefined;

  get state(): LiveState {
    return this.#state;
  }

  subscribe(fn: Listener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #set(patch: Partial<LiveState>): void {
    this.#state = { ...this.#state, ...patch };
    for (const l of this.#listeners) l(this.#state);
  }

  start(): void {
    if (this.#abort) return;
    const abort = new AbortController();
    this.#abort = abort;
    void this.#run(abort.signal);
  }

  /** Stops the feed and forgets what it said (the next administrator starts afresh). */
  stop(): void {
    this.#abort?.abort();
    this.#abort = undefined;
    this.#set({ connected: false, snapshot: undefined, updates: 0, at: 0, error: undefined });
  }

  async #run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted && failures < MAX_RETRIES) {
      try {
        await readEvents('/console/events', signal, {
          onOpen: () => {
            failures = 0;
            this.#set({ connected: true, error: undefined });
          },
          onEvent: (event, data) => this.#frame(event, data),
        });
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.status === 401) return endSessionOn401(err);
        if (err instanceof ApiError && err.status === 403) return this.#set({ connected: false, error: err.message });
        this.#set({ connected: false, error: (err as Error).message });
      }
      if (signal.aborted) return;
      this.#set({ connected: false });
      failures++;
      await new Promise((r) => setTimeout(r, backoffMs(failures)));
    }
  }

  #frame(event: string, data: string): void {
    if (event !== 'snapshot') return;
    try {
      const snapshot = JSON.parse(data) as LiveSnapshot;
      this.#set({ snapshot, updates: this.#state.updates + 1, at: Date.now() });
    } catch {
      // A malformed frame: wait for the next one.
    }
  }
}

export const live = new Live();
