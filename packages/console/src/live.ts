import { authHeader, clearToken, getToken } from './api';
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
 * The console's live feed: `GET /api/v1/console/events` (server-sent events) read with
 * fetch, so the token goes in a header (EventSource cannot send one). Reconnects with
 * backoff (1 s doubling to 15 s, at most {@link MAX_RETRIES} times in a row).
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

  stop(): void {
    this.#abort?.abort();
    this.#abort = undefined;
    this.#set({ connected: false });
  }

  async #run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted && failures < MAX_RETRIES) {
      const token = getToken();
      if (!token) return;
      try {
        const res = await fetch('/api/v1/console/events', { headers: { ...authHeader(token), accept: 'text/event-stream' }, signal, cache: 'no-store' });
        if (res.status === 401) {
          clearToken('The core no longer accepts that token: sign in again.');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`live feed: HTTP ${res.status}`);
        failures = 0;
        this.#set({ connected: true, error: undefined });
        await this.#read(res.body, signal);
      } catch (err) {
        if (signal.aborted) return;
        this.#set({ connected: false, error: (err as Error).message });
      }
      if (signal.aborted) return;
      this.#set({ connected: false });
      failures++;
      await new Promise((r) => setTimeout(r, Math.min(15_000, 1_000 * 2 ** Math.min(4, failures - 1))));
    }
  }

  async #read(body: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    signal.addEventListener('abort', () => void reader.cancel().catch(() => undefined), { once: true });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        this.#frame(frame);
      }
      // A frame never grows past a few hundred KiB; drop a runaway one.
      if (buf.length > 8 * 1024 * 1024) buf = '';
    }
  }

  #frame(frame: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (event !== 'snapshot' || data.length === 0) return;
    try {
      const snapshot = JSON.parse(data.join('\n')) as LiveSnapshot;
      this.#set({ snapshot, updates: this.#state.updates + 1, at: Date.now() });
    } catch {
      // A malformed frame: wait for the next one.
    }
  }
}

export const live = new Live();
