import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { isOutpostError, type Logger } from '@outpost/common';
import type { BootTokens } from './boot-tokens.js';
import type { DecisionCache } from './decisions.js';
import { parseRange } from './http-range.js';
import type { ImageFiles } from './image-files.js';
import { observeBootHttp } from './metrics.js';
import type { ServiceMetrics } from '@outpost/common';

export interface HttpDeps {
  decisions: DecisionCache;
  /** The one-use boot tokens our DHCP answers handed out: only a script request with one is a boot we serve for real. */
  tokens: BootTokens;
  images: ImageFiles;
  loaderDir: string;
  loaderFiles: ReadonlySet<string>;
  /** Our base URL as clients see it (substituted as `${outpost-base}` in scripts). */
  base: () => string;
  /** A boot event for the timeline; without a MAC the server finds it by the client address. */
  event: (mac: string | undefined, type: 'script' | 'handoff' | 'http', detail: Record<string, string | number | boolean>, ip: string) => void;
  stats: () => Record<string, unknown>;
  log: Logger;
  /** Counts requests and answers `GET /metrics` (metrics.ts). */
  metrics?: ServiceMetrics;
}

const MAC_SCRIPT = /^\/boot\/([0-9a-f]{2}(?:-[0-9a-f]{2}){5})\.ipxe$/;

/** Inserts `set outpost-base <url>` after the `#!ipxe` line. */
export function withBase(script: string, base: string): string {
  const nl = script.indexOf('\n');
  const first = nl < 0 ? script : script.slice(0, nl);
  const rest = nl < 0 ? '' : script.slice(nl + 1);
  return `${first}\nset outpost-base ${base}\n${rest}`;
}

function decodePath(raw: string): string[] | undefined {
  const segs: string[] = [];
  for (const s of raw.split('/')) {
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      return undefined;
    }
    if (d === '' || d === '.' || d === '..' || d.includes('/') || d.includes('\\') || d.includes('\0')) return undefined;
    segs.push(d);
  }
  return segs;
}

/**
 * HTTP for iPXE and UEFI HTTP boot (node:http, no middleware on the path):
 * `GET /boot/<mac>.ipxe?b=<boot token>` (the machine's script, decided by the core), `GET|HEAD
 * /images/<image>/<path>` (boot image package files), `GET|HEAD /loaders/<file>` (iPXE
 * binaries for UEFI HTTP boot), `GET /api/v1/health`, `GET /api/v1/stats`.
 */
export function createBootHttpServer(d: HttpDeps): Server {
  const counters = { scripts: 0, untokened: 0, files: 0, notFound: 0, errors: 0, bytes: 0 };
  const send = (res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  };
  const sendFile = async (req: IncomingMessage, res: ServerResponse, file: string, size: number): Promise<void> => {
    // One byte range (iPXE and UEFI HTTP boot resume and probe with them); an If-Range
    // we cannot check (no validators here) gets the whole file, as RFC 9110 asks.
    const range = req.headers['if-range'] === undefined ? parseRange(req.headers.range, size) : ({ kind: 'full' } as const);
    if (range.kind === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${size}`, 'accept-ranges': 'bytes', 'content-length': 0 });
      res.end();
      return;
    }
    const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, size - 1];
    const length = size === 0 ? 0 : end - start + 1;
    res.writeHead(range.kind === 'partial' ? 206 : 200, {
      'content-type': 'application/octet-stream',
      'content-length': length,
      'accept-ranges': 'bytes',
      ...(range.kind === 'partial' ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
    });
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    counters.files++;
    counters.bytes += length;
    await new Promise<void>((resolve) => {
      const s = createReadStream(file, { start, end });
      s.on('error', () => {
        res.destroy();
        resolve();
      });
      res.on('close', resolve);
      s.pipe(res);
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    if (d.metrics && observeBootHttp(d.metrics, req, res, path)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n');
    if (path === '/api/v1/health') return send(res, 200, JSON.stringify({ status: 'ok', service: 'netboot' }), 'application/json');
    if (path === '/api/v1/stats') return send(res, 200, JSON.stringify({ ...d.stats(), http: counters }), 'application/json');
    const m = MAC_SCRIPT.exec(path.toLowerCase());
    if (m) {
      const mac = m[1]!.replace(/-/g, ':');
      const uuid = url.searchParams.get('uuid') ?? undefined;
      const archParam = url.searchParams.get('arch');
      const arch = archParam !== null && /^\d+$/.test(archParam) ? Number(archParam) : undefined;
      const validUuid = uuid && /^[0-9a-f-]{36}$/i.test(uuid) ? uuid : undefined;
      // Only the boot our DHCP answered (its one-use token) consumes a one-shot and makes a
      // timeline; any other fetch gets what the core would say, changing nothing.
      const check = d.tokens.take(mac, url.searchParams.get('b') ?? undefined);
      if (check !== 'ok') {
        counters.untokened++;
        const { decision, source } = await d.decisions.forUntokened(mac, validUuid, arch);
        d.log.debug({ mac, ip, token: check, kind: decision.kind, source }, 'boot script fetched without a valid boot token: nothing consumed or recorded');
        return send(res, 200, withBase(decision.script, d.base()));
      }
      const { decision, source } = await d.decisions.forScript(mac, validUuid, arch);
      counters.scripts++;
      d.event(mac, 'script', { kind: decision.kind, source, ...(decision.image ? { image: decision.image } : {}), ...(decision.job ? { job: decision.job } : {}) }, ip);
      d.event(mac, 'handoff', { to: decision.image ?? decision.kind }, ip);
      return send(res, 200, withBase(decision.script, d.base()));
    }
    const segs = decodePath(path.slice(1));
    if (!segs) return send(res, 400, 'bad path\n');
    if (segs[0] === 'images' && segs.length >= 3) {
      const image = segs[1]!;
      const rel = segs.slice(2).join('/');
      const f = await d.images.file(image, rel);
      d.event(undefined, 'http', { image, path: rel, bytes: f.size }, ip);
      return sendFile(req, res, f.file, f.size);
    }
    if (segs[0] === 'loaders' && segs.length >= 2) {
      const rel = segs.slice(1).join('/');
      if (!d.loaderFiles.has(rel)) return send(res, 404, 'no such loader\n');
      const file = join(d.loaderDir, rel);
      const st = await stat(file);
      return sendFile(req, res, file, st.size);
    }
    counters.notFound++;
    return send(res, 404, 'not found\n');
  };

  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = isOutpostError(err) && err.status < 500 ? err.status : (err as NodeJS.ErrnoException).code === 'ENOENT' ? 404 : 500;
      if (status === 404) counters.notFound++;
      else {
        counters.errors++;
        d.log.warn({ err, url: req.url }, 'boot HTTP request failed');
      }
      if (!res.headersSent) send(res, status, status === 404 ? 'not found\n' : 'error\n');
      else res.destroy();
    });
  });
}

export async function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
