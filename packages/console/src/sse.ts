import { ApiError, errorOf } from './api';

/**
 * Reads a server-sent event stream of the core (`/api/v1<path>`) with `fetch` and the
 * session cookie, calling `onEvent(event, data)` per frame; resolves when the stream
 * ends. Throws {@link ApiError} when the core refuses it (a 401 the caller turns into a
 * sign-out). fetch rather than EventSource: it sees the status of a refusal.
 */
export async function readEvents(path: string, signal: AbortSignal, handlers: { onOpen?: () => void; onEvent: (event: string, data: string) => void }): Promise<void> {
  const res = await fetch(`/api/v1${path}`, { credentials: 'same-origin', headers: { accept: 'text/event-stream' }, signal, cache: 'no-store' });
  if (!res.ok) throw await errorOf(res);
  if (!res.body) throw new ApiError(res.status, 'HTTP_NO_BODY', 'the stream has no body');
  handlers.onOpen?.();
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  signal.addEventListener('abort', () => void reader.cancel().catch(() => undefined), { once: true });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const frame = parseFrame(buf.slice(0, end));
      buf = buf.slice(end + 2);
      if (frame) handlers.onEvent(frame.event, frame.data);
    }
    // A frame never grows past a few hundred KiB; drop a runaway one.
    if (buf.length > 8 * 1024 * 1024) buf = '';
  }
}

/** One frame's event name (default `message`) and data lines joined; undefined for a comment-only frame. */
export function parseFrame(frame: string): { event: string; data: string } | undefined {
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
  return data.length === 0 ? undefined : { event, data: data.join('\n') };
}

/** Backoff before the `failures`-th reconnect: 1 s doubling to 15 s. */
export const backoffMs = (failures: number): number => Math.min(15_000, 1_000 * 2 ** Math.min(4, Math.max(0, failures - 1)));
