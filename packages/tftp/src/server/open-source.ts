import { stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { TftpErrorCode } from '../packet/opcodes.js';
import { resolveReadPath, type Verdict } from '../path-jail.js';
import { BufferSource, type ByteSource } from '../source/byte-source.js';
import { StreamSource } from '../source/stream-source.js';
import type { ReadCache } from '../source/read-cache.js';
import { NetasciiEncoder } from '../netascii.js';

export interface ResolveContext {
  remoteAddress: string;
  remotePort: number;
  mode: 'octet' | 'netascii';
}

/**
 * What a resolver hands back for a path: a file on disk (served through the shared read
 * cache; the resolver vouches for the path, it is not jailed), bytes in memory, or a
 * stream (size optional: without it tsize is not answered).
 */
export type TftpResolved = { file: string } | { data: Buffer } | { stream: Readable; size?: number };

/**
 * Caller-supplied lookup, tried before the root directory. `path` is already normalised
 * and jailed (no "..", no leading "/", no backslashes). Return null to fall through to
 * the root (or ERROR 1 without one).
 */
export type TftpResolver = (
  path: string,
  ctx: ResolveContext,
) => Promise<TftpResolved | null | undefined> | TftpResolved | null | undefined;

/**
 * What a read request was resolved to, before anything is opened. `file` and `data` can
 * cross to a transfer worker; a `stream` is served where it was made (the main thread).
 * `data` is already netascii-converted when the mode is netascii.
 */
export type ReadTarget =
  | { kind: 'file'; path: string; size: number; mtimeMs: number }
  | { kind: 'data'; data: Buffer }
  | { kind: 'stream'; stream: Readable; size: number | undefined };

function netasciiStream(src: Readable): Readable {
  const enc = new NetasciiEncoder();
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      cb(null, enc.push(chunk));
    },
  });
  src.on('error', (err) => t.destroy(err));
  return src.pipe(t);
}

async function fileTarget(path: string): Promise<Verdict<ReadTarget>> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return { ok: false, tftpCode: TftpErrorCode.FILE_NOT_FOUND, reason: 'not-a-file' };
    return { ok: true, value: { kind: 'file', path, size: st.size, mtimeMs: st.mtimeMs } };
  } catch {
    return { ok: false, tftpCode: TftpErrorCode.FILE_NOT_FOUND, reason: 'not-found' };
  }
}

function targetFromResolved(r: TftpResolved, mode: 'octet' | 'netascii'): Promise<Verdict<ReadTarget>> | Verdict<ReadTarget> {
  if ('file' in r) return fileTarget(r.file);
  if ('data' in r) return { ok: true, value: { kind: 'data', data: mode === 'netascii' ? new NetasciiEncoder().push(r.data) : r.data } };
  return { ok: true, value: { kind: 'stream', stream: r.stream, size: r.size } };
}

/** Runs the resolver, then the jailed root; nothing is opened yet. Throws what the resolver throws. */
export async function resolveReadTarget(
  rel: string,
  ctx: ResolveContext,
  env: { rootReal: string | undefined; resolver: TftpResolver | undefined },
): Promise<Verdict<ReadTarget>> {
  if (env.resolver) {
    const r = await env.resolver(rel, ctx);
    if (r) return targetFromResolved(r, ctx.mode);
  }
  if (env.rootReal === undefined) return { ok: false, tftpCode: TftpErrorCode.FILE_NOT_FOUND, reason: 'not-found' };
  const p = await resolveReadPath(env.rootReal, rel);
  if (!p.ok) return p;
  return fileTarget(p.value);
}

/** Bytes on the wire when known up front (answers tsize); netascii files and sizeless streams are not. */
export function targetSize(t: ReadTarget, mode: 'octet' | 'netascii'): number | undefined {
  if (t.kind === 'data') return t.data.length;
  return mode === 'octet' ? t.size : undefined;
}

/** Releases what a target holds when it will not be served (a stream is destroyed). */
export function discardTarget(t: ReadTarget): void {
  if (t.kind === 'stream') t.stream.destroy();
}

export function openTarget(t: ReadTarget, mode: 'octet' | 'netascii', cache: ReadCache): ByteSource {
  if (t.kind === 'data') return new BufferSource(t.data);
  if (t.kind === 'file') {
    if (mode === 'netascii') return new StreamSource(netasciiStream(createReadStream(t.path)));
    return cache.acquire(t.path, t.size, t.mtimeMs);
  }
  if (mode === 'netascii') return new StreamSource(netasciiStream(t.stream));
  return new StreamSource(t.stream, t.size);
}
