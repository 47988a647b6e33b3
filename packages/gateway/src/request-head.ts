/*
 * The one HTTP/1.x request head a client sends after the TLS handshake:
 *
 *   CONNECT host:port HTTP/1.1\r\n        (a tunnel; host may be [v6])
 *   POST /api/v1/enroll HTTP/1.1\r\n      (enrollment, certificate-less clients only)
 *   Header: value\r\n ...
 *   \r\n
 *
 * Bounded: the head must end within `maxBytes`. The decoder never throws on hostile
 * bytes; it returns a typed result the caller counts and answers.
 */

export interface RequestHead {
  method: string;
  target: string;
  version: string;
  /** Lowercase names; the last value wins. */
  headers: Map<string, string>;
  /** Bytes after the head (the start of the tunnel or of a body). */
  rest: Buffer;
}

export type HeadResult =
  | { kind: 'incomplete' }
  | { kind: 'too-large' }
  | { kind: 'bad'; reason: string }
  | { kind: 'head'; head: RequestHead };

const END = Buffer.from('\r\n\r\n');
const TOKEN = /^[A-Z]{1,16}$/;
const TARGET = /^[\x21-\x7e]{1,2048}$/;

/** Looks for a complete head in `buf`. */
export function decodeRequestHead(buf: Buffer, maxBytes: number): HeadResult {
  const end = buf.indexOf(END);
  if (end < 0) return buf.length >= maxBytes ? { kind: 'too-large' } : { kind: 'incomplete' };
  if (end + 4 > maxBytes) return { kind: 'too-large' };
  const text = buf.subarray(0, end).toString('latin1');
  const lines = text.split('\r\n');
  const parts = lines[0]!.split(' ');
  if (parts.length !== 3) return { kind: 'bad', reason: 'request line' };
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN.test(method) || !TARGET.test(target) || !/^HTTP\/1\.[01]$/.test(version)) return { kind: 'bad', reason: 'request line' };
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'bad', reason: 'header' };
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) return { kind: 'bad', reason: 'header' };
    headers.set(name, line.slice(colon + 1).trim());
  }
  return { kind: 'head', head: { method, target, version, headers, rest: buf.subarray(end + 4) } };
}

/** Normalises a CONNECT authority to `host:port` (lowercase host); undefined when it is not one. */
export function parseAuthority(target: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(target);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return `${m[1]!.toLowerCase()}:${port}`;
}

/** Splits `host:port` (host may be bracketed v6) for net.connect. */
export function splitAuthority(authority: string): { host: string; port: number } {
  const i = authority.lastIndexOf(':');
  return { host: authority.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(authority.slice(i + 1)) };
}

const REASONS: Record<number, string> = {
  200: 'Connection Established',
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  421: 'Misdirected Request',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** A complete `Connection: close` answer with a JSON error body. */
export function encodeRefusal(status: number, code: string, message: string, extraHeaders: Record<string, string | number> = {}): Buffer {
  const body = JSON.stringify({ error: { code, message } });
  const headers = Object.entries({ 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close', ...extraHeaders })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return Buffer.from(`HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n${headers}\r\n${body}`);
}
