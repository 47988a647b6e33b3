import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';

/** One built file, held in memory (the console is a few hundred KiB). */
export interface Asset {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
  etag: string;
}

export interface ConsoleAssets {
  dir: string;
  index: Asset;
  /** By path under `assets/` (`index-3f2a.js`). */
  files: Map<string, Asset>;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.js', '.css', '.html', '.svg', '.json', '.map', '.txt']);
const MAX_FILES = 1_000;

/** Where the built console is: `assetsDir`, else the installed `@outpost/console` package's `dist`. */
export function locateAssets(assetsDir: string | undefined): string | undefined {
  if (assetsDir !== undefined) return assetsDir;
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@outpost/console/package.json')), 'dist');
  } catch {
    return undefined;
  }
}

function asset(body: Buffer, name: string): Asset {
  const ext = extname(name);
  const gz = COMPRESSIBLE.has(ext) && body.length > 1024 ? gzipSync(body) : undefined;
  return { body, gzip: gz, type: TYPES[ext] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** Reads the built console; undefined when it is not built (no `index.html`). */
export async function loadAssets(dir: string): Promise<ConsoleAssets | undefined> {
  const indexBody = await readFile(join(dir, 'index.html')).catch(() => undefined);
  if (!indexBody) return undefined;
  const files = new Map<string, Asset>();
  const root = join(dir, 'assets');
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 4) return;
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (files.size >= MAX_FILES) return;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p, depth + 1);
      else if (e.isFile() && (await stat(p)).size <= 16 * 1024 * 1024) files.set(relative(root, p).split(sep).join('/'), asset(await readFile(p), e.name));
    }
  };
  await walk(root, 0);
  return { dir, index: asset(indexBody, 'index.html'), files };
}

/**
 * The console's Content-Security-Policy: its own scripts, styles and API only (no inline
 * script, no CDN, no framing). Styles set from script go through the CSSOM, which CSP allows.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
