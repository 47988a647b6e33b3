import type { ServerResponse } from 'node:http';

/**
 * Starts a server-sent events response: the headers (no caching, no proxy buffering), no
 * Nagle delay, and a 2 s reconnect hint for the browser's EventSource.
 */
export function openEventStream(res: ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-store',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  });
  res.socket?.setNoDelay(true);
  res.write('retry: 2000\n\n');
}
