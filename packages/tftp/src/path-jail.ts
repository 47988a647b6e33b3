import { realpath, lstat } from 'node:fs/promises';
import { join, sep, dirname, basename } from 'node:path';
import { TftpErrorCode } from './packet/opcodes.js';

/*
 * Request paths are normalised and jailed before anything touches the disk:
 *  - NUL, backslash, control characters and undecodable bytes -> ERROR 2
 *  - a ".." segment anywhere -> ERROR 2 (even one that would stay inside)
 *  - a leading "/" is served relative to the root (as dnsmasq does), or refused with
 *    absolutePaths: "reject"
 *  - "." and empty segments are dropped; nothing left -> ERROR 1
 * Then the file's realpath must lie inside the root's realpath (a symlink leaving the
 * root -> ERROR 2) and be a regular file (else ERROR 1). Trailing 0xFF bytes are already
 * stripped by the RRQ decoder.
 */

export type Verdict<T> = { ok: true; value: T } | { ok: false; tftpCode: number; reason: string };

const BAD_CHARS = /[\u0000-\u001f\u007f\\\ufffd]/;

export function normalizeRequestPath(name: string, absolutePaths: 'relative' | 'reject'): Verdict<string> {
  if (BAD_CHARS.test(name)) return { ok: false, tftpCode: TftpErrorCode.ACCESS_VIOLATION, reason: 'bad-characters' };
  if (name.startsWith('/') && absolutePaths === 'reject') {
    return { ok: false, tftpCode: TftpErrorCode.ACCESS_VIOLATION, reason: 'absolute-path' };
  }
  const parts: string[] = [];
  for (const seg of name.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return { ok: false, tftpCode: TftpErrorCode.ACCESS_VIOLATION, reason: 'parent-segment' };
    parts.push(seg);
  }
  if (parts.length === 0) return { ok: false, tftpCode: TftpErrorCode.FILE_NOT_FOUND, reason: 'empty-path' };
  return { ok: true, value: parts.join('/') };
}

function inside(rootReal: string, p: string): boolean {
  return p === rootReal || p.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep);
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function fsVerdict(err: unknown): { ok: false; tftpCode: number; reason: string } {
  const code = errnoCode(err);
  if (code === 'EACCES' || code === 'EPERM') return { ok: false, tftpCode: TftpErrorCode.ACCESS_VIOLATION, reason: 'permission' };
  return { ok: false, tftpCode: TftpErrorCode.FILE_NOT_FOUND, reason: 'not-found' };
}

/** Resolves a normalised relative path to a real file path inside `rootReal`. */
export async function resolveReadPath(rootReal: string, rel: string): Promise<Verdict<string>> {
  let real: string;
  try {
    real = await realpath(join(rootReal, rel));
  } catch (err) {
    return fsVerdict(err);
  }
  if (!inside(rootReal, real)) return { ok: false, tftpCode: TftpErrorCode.ACCESS_VIOLATION, reason: 'outside-root' };
  return { ok: true, value: real };
}

/**
 * Resolves where a WRQ may write: the parent directory must exist inside the root, and
 * the name itself must not be a symlink or anything but a regular file.
 */
export async function resolveWritePath(
  rootReal: string,
  rel: string,
): Promise<Verdict<{ path: string; exists: boolean }>> {
  let parent: string;
  try {
    parent = await realpath(join(rootReal, dirname(rel)));
  } catch (err) {
    return fsVerdict(err);
  }
  if (!inside(rootReal, parent)) return { ok: false, tftpCode: TftpErrorCode.ACCESS_VIOLATION, reason: 'outside-root' };
  const path = join(parent, basename(rel));
  try {
    const st = await lstat(path);
    if (!st.isFile()) return { ok: false, tftpCode: TftpErrorCode.ACCESS_VIOLATION, reason: 'not-a-file' };
    return { ok: true, value: { path, exists: true } };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { ok: true, value: { path, exists: false } };
    return fsVerdict(err);
  }
}
