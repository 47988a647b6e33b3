import { chmod, mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

/** How {@link writeFileAtomic} writes. */
export interface AtomicWriteOptions {
  /** The file's mode, set whatever the umask (default 0o600: these files hold secrets). */
  mode?: number;
  /** fsync the file and its directory, so the new content survives a power cut (default true). */
  durable?: boolean;
  /** Create the directory (0700) when missing (default false). */
  mkdir?: boolean;
}

/**
 * Replaces `file` with `data` at once: readers (and a process killed mid-write) see the
 * old content or the new, never a part. Written to `<file>.<pid>.tmp` in the same
 * directory, then renamed over it; the temp file is removed when anything fails.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const mode = options.mode ?? 0o600;
  const durable = options.durable ?? true;
  const dir = dirname(file);
  if (options.mkdir) await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const fh = await open(tmp, 'w', mode);
    try {
      await fh.writeFile(data);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, mode);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (durable) {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
