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

async function fileSource(path: string, mode: 'octet' | 'netascii', cache: ReadCache): Promise<Verdict<ByteSource>> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return { ok: false, tftpCode: TftpErrorCode.FILE_NOT_FOUND, reason: 'not-a-file' };
    if (mode === 'netascii') return { ok: true, value: new StreamSource(netasciiStream(createReadStream(path))) };
    return { ok: true, value: cache.acquire(path, st.size, st.mtimeMs) };
  } catch {
    return { ok: false, tftpCode: TftpErrorCode.FILE_NOT_FOUND, reason: 'not-found' };
  }
}

export function sourceFromResolved(r: TftpResolved, mode: 'octet' | 'netascii', cache: ReadCache): Promise<Verdict<ByteSource>> | Verdict<ByteSource> {
  if ('file' in r) return fileSource(r.file, mode, cache);
  if ('data' in r) {
    const data = mode === 'netascii' ? new NetasciiEncoder().push(r.data) : r.data;
    return { ok: true, value: new BufferSource(data) };
  }
  if (mode === 'netascii') return { ok: true, value: new StreamSource(netasciiStream(r.stream)) };
  return { ok: true, value: new StreamSource(r.stream, r.size) };
}

export async function openReadSource(
  rel: string,
  ctx: ResolveContext,
  env: { rootReal: string | undefined; resolver: TftpResolver | undefined; cache: ReadCache },
): Promise<Verdict<ByteSource>> {
  if (env.resolver) {
    const r = await env.resolver(rel, ctx);
    if (r) return sourceFromResolved(r, ctx.mode, env.cache);
  }
  if (env.rootReal === undefined) return { ok: false, tftpCode: TftpErrorCode.FILE_NOT_FOUND, reason: 'not-found' };
  const p = await resolveReadPath(env.rootReal, rel);
  if (!p.ok) return p;
  return fileSource(p.value, ctx.mode, env.cache);
}
