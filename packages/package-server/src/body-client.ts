import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** The head of an answer: status and headers (names lower-cased, repeats joined by `, `). */
export interface BodyHead {
  status: number;
  headers: Record<string, string>;
  /** The body's length from `Content-Length`. */
  length: number;
}

export interface BodyHandler {
  /** The answer's head, before any body byte; throwing refuses the answer (the connection is dropped). */
  head(h: BodyHead): void;
  /**
   * One piece of the body, in a buffer the next read reuses: use (or copy) it before
   * returning. A returned promise pauses reading until it settles; a rejection or a
   * throw ends the download with that error.
   */
  body(chunk: Buffer): void | Promise<void>;
}

export interface BodyGetOptions {
  headers: Record<string, string>;
  /** No byte for this long (connecting included): the download fails. */
  timeoutMs: number;
  signal: AbortSignal;
  /** The read buffer: the most one read hands over (default 64 KiB). */
  readBytes?: number;
  /** For `https:`: as `tls.connect` takes them (`ca`, `rejectUnauthorized`). */
  tls?: { ca?: string | Buffer | (string | Buffer)[]; rejectUnauthorized?: boolean };
}

const HEAD_LIMIT = 64 * 1024;
const DEFAULT_READ_BYTES = 64 * 1024;

/** `HTTP/1.1 206 Partial Content\r\nName: value...` → status and headers; throws on a malformed head. */
export function parseHead(text: string): Omit<BodyHead, 'length'> {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) throw new Error(`not an HTTP/1.x answer: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { status: Number(m[1]), headers };
}

function bodyLength(headers: Record<string, string>): number {
  const te = headers['transfer-encoding'];
  if (te !== undefined && te.toLowerCase() !== 'identity') {
    throw new Error(`a body in Transfer-Encoding ${te} (Outpost sources send files with Content-Length)`);
  }
  const cl = headers['content-length'];
  if (cl === undefined || !/^\d{1,15}$/.test(cl)) throw new Error(`no valid Content-Length (${cl === undefined ? 'none' : JSON.stringify(cl)})`);
  return Number(cl);
}

/**
 * GET `url` on a connection of its own (HTTP/1.1, `Connection: close`) and hand the
 * body to `handler` piece by piece as it is read into one reused buffer (`onread`): no
 * allocation, stream hop or parser callback per chunk, which is most of what a Node
 * HTTP client spends per byte on a fast link. Only bodies framed by `Content-Length`
 * are taken (every Outpost source sends one for a file); anything else is an error.
 * Resolves with the body's length once all of it was handed over.
 */
export function getBody(url: URL, o: BodyGetOptions, handler: BodyHandler): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    if (o.signal.aborted) {
      reject(o.signal.reason as Error);
      return;
    }
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') {
      reject(new Error(`unsupported protocol ${url.protocol}`));
      return;
    }
    let head: Buffer | undefined = Buffer.alloc(0);
    let length = 0;
    let got = 0;
    let settled = false;
    const onread = { buffer: Buffer.allocUnsafe(o.readBytes ?? DEFAULT_READ_BYTES), callback: (n: number, buf: Buffer): boolean => onData(buf.subarray(0, n)) };
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(url.port || (secure ? 443 : 80));
    // tls.connect takes `onread` as net.connect does (Node >= 14); @types/node omits it.
    const tlsOptions: ConnectionOptions & { onread: typeof onread } = { host, port, onread, ...(isIP(host) ? {} : { servername: host }), ...o.tls };
    const socket: Socket = secure ? tlsConnect(tlsOptions) : netConnect({ host, port, onread });

    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      o.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve(length);
    };
    const onAbort = (): void => settle(o.signal.reason as Error);
    o.signal.addEventListener('abort', onAbort, { once: true });
    socket.setTimeout(o.timeoutMs, () => settle(new Error(head ? `no answer in ${o.timeoutMs} ms` : `no bytes for ${o.timeoutMs} ms`)));
    socket.on('error', (err) => settle(err));
    socket.on('close', () => settle(new Error(head ? 'the connection closed before an answer' : `the connection closed after ${got} of ${length} body bytes`)));

    const consume = (chunk: Buffer): boolean => {
      if (got + chunk.length > length) {
        settle(new Error(`more body bytes than the ${length} of Content-Length`));
        return false;
      }
      got += chunk.length;
      let r: void | Promise<void>;
      try {
        r = handler.body(chunk);
      } catch (err) {
        settle(err as Error);
        return false;
      }
      if (r === undefined) {
        if (got === length) settle();
        return !settled;
      }
      r.then(
        () => {
          if (got === length) settle();
          else if (!settled) socket.resume();
        },
        (err: unknown) => settle(err as Error),
      );
      return false;
    };

    const onData = (chunk: Buffer): boolean => {
      if (settled) return false;
      if (head === undefined) return consume(chunk);
      // The head may arrive in pieces: keep a copy (the read buffer is reused).
      const all = head.length > 0 ? Buffer.concat([head, chunk]) : chunk;
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        if (all.length > HEAD_LIMIT) settle(new Error(`an answer head over ${HEAD_LIMIT} bytes`));
        else head = Buffer.from(all);
        return !settled;
      }
      head = undefined;
      try {
        const h = parseHead(all.toString('latin1', 0, end));
        length = bodyLength(h.headers);
        handler.head({ ...h, length });
      } catch (err) {
        settle(err as Error);
        return false;
      }
      const rest = all.subarray(end + 4);
      if (rest.length > 0) return consume(rest);
      if (length === 0) settle();
      return !settled;
    };

    const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close'];
    for (const [k, v] of Object.entries(o.headers)) lines.push(`${k}: ${v}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}
