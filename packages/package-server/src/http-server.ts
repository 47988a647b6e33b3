import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BufferPool, FileReadError, parseRange, sendFileRange, urlHost, type Logger, type TokenBucket } from '@outpost/common';
import type { FileEntry, PackageStore } from './store.js';

export interface ServeCounters {
  requests: number;
  bytes: number;
  status: Record<string, number>;
  /**
   * Bytes served per requesting site server (`x-outpost-site-server`), or `client` for
   * everyone else. At most `maxCountedClients` keys: the header is client-sent, so later
   * names are counted under `other`.
   */
  bytesTo: Record<string, number>;
  active: number;
  /** Downloads cut off because their socket took no bytes for `idleTimeoutMs`. */
  idleTimeouts: number;
}

/** The key later clients are folded into once `bytesTo` holds its cap of names. */
export const OTHER_CLIENTS = 'other';

/** Where a request path points: a file of a served package, or why not. */
export type Resolved = { ok: true; id: string; file: FileEntry } | { ok: false; status: 400 | 404; why: string };

/**
 * Resolves `/packages/<id>/<path>` against the serving index. Each segment is
 * percent-decoded on its own; a segment that fails to decode, is empty, `.` or `..`, or
 * holds `/`, `\` or NUL after decoding is a 400. The path is then looked up in the
 * package's manifest, never joined to a directory: no request can reach a byte outside
 * the store.
 */
export function resolvePath(rawUrl: string, serving: ReadonlyMap<string, ReadonlyMap<string, FileEntry>>): Resolved {
  if (!rawUrl.startsWith('/')) return { ok: false, status: 400, why: 'absolute-form or bad request target' };
  const q = rawUrl.indexOf('?');
  const pathname = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const segs = pathname.split('/').slice(1);
  if (segs[0] !== 'packages' || segs.length < 3) return { ok: false, status: 404, why: 'not a package file URL' };
  const decoded: string[] = [];
  for (const s of segs.slice(1)) {
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      return { ok: false, status: 400, why: 'bad percent-encoding' };
    }
    if (d === '' || d === '.' || d === '..' || /[/\\\0]/.test(d)) return { ok: false, status: 400, why: `bad path segment '${s}'` };
    decoded.push(d);
  }
  const [id, ...rest] = decoded;
  const file = serving.get(id!)?.get(rest.join('/'));
  if (!file) return { ok: false, status: 404, why: 'no such package file here' };
  return { ok: true, id: id!, file };
}

/** The route label of a request for metrics: a fixed set, never a path a client chose. */
function routeOf(url: string): string {
  if (url.startsWith('/packages/')) return '/packages/:id/*';
  if (url === '/api/v1/health' || url === '/api/v1/stats' || url === '/metrics') return url;
  return 'other';
}

export interface HttpServerOptions {
  host: string;
  port: number;
  store: PackageStore;
  log: Logger;
  chunkSize: number;
  bucket: TokenBucket;
  /** Extra JSON for `GET /api/v1/health` and `/api/v1/stats`. */
  stats(): Record<string, unknown>;
  /** A served file was found missing or damaged: re-verify its packages. */
  damaged(sha: string): void;
  /** Prometheus exposition for `GET /metrics` (none: 404). */
  metrics?: { readonly contentType: string; text(): Promise<string> } | undefined;
  /** Called once per answered request (downloads included, when their connection closes). */
  observe?: ((method: string, route: string, status: number, seconds: number) => void) | undefined;
  /** Files up to this size are kept in memory once read (content is immutable). @default 256 KiB */
  smallFileMax?: number;
  /** Memory for small files. @default 32 MiB */
  smallCacheBytes?: number;
  /** Memory for read buffers of all downloads together (each gets a share, 64 KiB to `chunkSize`). @default 32 MiB */
  readBuffers?: number;
  /** A download whose socket takes no bytes for this long is destroyed and counted. @default 60000 */
  idleTimeoutMs?: number;
  /** Keys of `bytesTo` before later clients fold into `other`. @default 64 */
  maxCountedClients?: number;
}

/**
 * Small files, whole, by sha256: content is immutable, so a cached copy is never stale.
 * The store watcher evicts a file that changes or vanishes on disk. LRU by Map order.
 */
class SmallFileCache {
  readonly #map = new Map<string, Buffer>();
  #bytes = 0;
  constructor(readonly maxBytes: number) {}
  get(sha: string): Buffer | undefined {
    const b = this.#map.get(sha);
    if (b) {
      this.#map.delete(sha);
      this.#map.set(sha, b);
    }
    return b;
  }
  set(sha: string, b: Buffer): void {
    if (b.length > this.maxBytes) return;
    this.evict(sha);
    this.#map.set(sha, b);
    this.#bytes += b.length;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.maxBytes) break;
      this.#map.delete(k);
      this.#bytes -= v.length;
    }
  }
  evict(sha: string): void {
    const b = this.#map.get(sha);
    if (b) {
      this.#map.delete(sha);
      this.#bytes -= b.length;
    }
  }
}

/**
 * The package server's HTTP side on node:http directly (no middleware on the hot path):
 * `GET`/`HEAD /packages/<id>/<path>` with Content-Length, Accept-Ranges, one Range
 * (suffix too) → 206/416, strong ETag = the sha256, If-None-Match → 304, If-Range.
 * Files are opened by content hash with O_NOFOLLOW, so a package that changes version
 * never cuts off a download of the old one: the old file stays open until it is sent.
 */
export function createHttpServer(o: HttpServerOptions) {
  const counters: ServeCounters = { requests: 0, bytes: 0, status: {}, bytesTo: {}, active: 0, idleTimeouts: 0 };
  const idleTimeoutMs = o.idleTimeoutMs ?? 60_000;
  const maxClients = o.maxCountedClients ?? 64;
  let clientKeys = 0;
  const countTo = (who: string, bytes: number): void => {
    const to = counters.bytesTo;
    let key = who;
    if (!Object.hasOwn(to, key)) {
      if (clientKeys >= maxClients) key = OTHER_CLIENTS;
      else if (key !== OTHER_CLIENTS) clientKeys++;
    }
    to[key] = (to[key] ?? 0) + bytes;
  };
  const smallMax = o.smallFileMax ?? 256 * 1024;
  const cache = new SmallFileCache(o.smallCacheBytes ?? 32 * 1024 * 1024);
  const pool = new BufferPool(o.chunkSize, o.readBuffers ?? 32 * 1024 * 1024);
  const count = (status: number): void => {
    counters.status[status] = (counters.status[status] ?? 0) + 1;
  };

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    count(status);
  };
  const fail = (res: ServerResponse, status: number, code: string, message: string): void => json(res, status, { error: { code, message } });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counters.requests++;
    const url = req.url ?? '/';
    if (url === '/api/v1/health') return json(res, 200, { status: 'ok', service: 'package-server', ...o.stats() });
    if (url === '/api/v1/stats') return json(res, 200, { http: counters, ...o.stats() });
    if (url === '/metrics' && o.metrics) {
      const text = await o.metrics.text();
      res.writeHead(200, { 'content-type': o.metrics.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return count(200);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return fail(res, 405, 'PKGSRV_METHOD_NOT_ALLOWED', `${req.method} is not allowed`);
    }
    const r = resolvePath(url, o.store.serving);
    if (!r.ok) return fail(res, r.status, r.status === 400 ? 'PKGSRV_BAD_PATH' : 'PKGSRV_NOT_FOUND', r.why);
    const { file } = r;
    let body = file.size <= smallMax ? cache.get(file.sha256) : undefined;
    let fh: Awaited<ReturnType<PackageStore['openContent']>>;
    if (!body) {
      fh = await o.store.openContent(file.sha256);
      const st = fh ? await fh.stat().catch(() => undefined) : undefined;
      if (!fh || !st?.isFile() || st.size !== file.size) {
        await fh?.close();
        o.damaged(file.sha256);
        return fail(res, 404, 'PKGSRV_NOT_FOUND', 'the file is missing or damaged here');
      }
      if (file.size <= smallMax) {
        const buf = Buffer.allocUnsafe(file.size);
        const { bytesRead } = await fh.read(buf, 0, file.size, 0);
        await fh.close();
        fh = undefined;
        if (bytesRead !== file.size) return fail(res, 404, 'PKGSRV_NOT_FOUND', 'the file is missing or damaged here');
        cache.set(file.sha256, buf);
        body = buf;
      }
    }
    const etag = `"${file.sha256}"`;
    const headers: Record<string, string | number> = { etag, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=31536000, immutable' };
    const inm = req.headers['if-none-match'];
    if (inm && (inm === '*' || inm.split(/\s*,\s*/).includes(etag))) {
      await fh?.close();
      res.writeHead(304, headers);
      res.end();
      count(304);
      return;
    }
    const ifRange = req.headers['if-range'];
    const range = ifRange !== undefined && ifRange !== etag ? ({ kind: 'none' } as const) : parseRange(req.headers.range, file.size);
    if (range.kind === 'unsatisfiable') {
      await fh?.close();
      res.writeHead(416, { ...headers, 'content-range': `bytes */${file.size}`, 'content-length': 0 });
      res.end();
      count(416);
      return;
    }
    let start = 0;
    let end = file.size - 1;
    let status = 200;
    if (range.kind === 'range') {
      ({ start, end } = range);
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${file.size}`;
    }
    const length = Math.max(0, end - start + 1);
    headers['content-length'] = length;
    res.writeHead(status, headers);
    count(status);
    if (req.method === 'HEAD' || length === 0) {
      await fh?.close();
      res.end();
      return;
    }
    const who = typeof req.headers['x-outpost-site-server'] === 'string' ? req.headers['x-outpost-site-server'].slice(0, 64) : 'client';
    // A client that stops reading must not hold the file, its buffers and the socket forever:
    // no write progress (the socket timer is refreshed by each write the socket takes) for
    // idleTimeoutMs cuts it off. The keep-alive timeout takes over once the answer is done.
    res.setTimeout(idleTimeoutMs, () => {
      counters.idleTimeouts++;
      o.log.warn({ event: 'download-idle', sha: file.sha256, client: who, remote: req.socket.remoteAddress, idleTimeoutMs }, 'download took no bytes; connection closed');
      res.destroy();
    });
    if (body) {
      // Small file from memory: one write.
      res.end(start === 0 && end === body.length - 1 ? body : body.subarray(start, end + 1));
      counters.bytes += length;
      countTo(who, length);
      return;
    }
    if (!fh) return;
    counters.active++;
    let sent = 0;
    try {
      sent = await sendFileRange(fh, res, start, end, pool, o.bucket);
    } catch (err) {
      // A read failed mid-answer (the file changed under us): the headers are out, so cut it off.
      if (err instanceof FileReadError) sent = err.bytesSent;
      o.log.warn({ err, sha: file.sha256 }, 'read failed while serving; connection closed');
      res.destroy();
      o.damaged(file.sha256);
    } finally {
      counters.active--;
      await fh.close().catch(() => undefined);
      counters.bytes += sent;
      countTo(who, sent);
    }
  }

  let server: Server | undefined;
  return {
    counters,
    /** Drops a cached small file (it changed or vanished on disk). */
    evict: (sha: string): void => cache.evict(sha),
    get url(): string {
      const a = server?.address() as AddressInfo | null;
      if (!a) throw new Error('package server HTTP listener is not started');
      return `http://${urlHost(a.address)}:${a.port}`;
    },
    async start(): Promise<void> {
      server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 }, (req, res) => {
        const observe = o.observe;
        if (observe) {
          const t0 = performance.now();
          res.once('close', () => observe(req.method ?? 'GET', routeOf(req.url ?? '/'), res.statusCode, (performance.now() - t0) / 1000));
        }
        handle(req, res).catch((err: unknown) => {
          o.log.error({ err }, 'request failed');
          if (!res.headersSent) fail(res, 500, 'PKGSRV_INTERNAL', 'internal error');
          else res.destroy();
        });
      });
      const s = server;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen({ host: o.host, port: o.port, backlog: 4096 }, () => {
          s.off('error', reject);
          resolve();
        });
      });
    },
    async stop(): Promise<void> {
      const s = server;
      server = undefined;
      if (!s) return;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeIdleConnections();
        setTimeout(() => s.closeAllConnections(), 1_000).unref();
      });
    },
  };
}
