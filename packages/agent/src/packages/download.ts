import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import { request as httpRequest, type Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OutpostError, silentLogger, z, type Logger } from '@outpost/common';
import type { CoreClient } from '../core-client.js';
import { sendDownloadReport, type DownloadReportRetry } from './download-report.js';

/** Codes of agent package downloads (see the agent README). */
export const PackageDownloadErrors = {
  NO_CODEBASE: 'AGENT_PACKAGE_NO_CODEBASE',
  DOWNLOAD_FAILED: 'AGENT_PACKAGE_DOWNLOAD_FAILED',
  BAD_PATH: 'AGENT_PACKAGE_BAD_PATH',
} as const;

const fileSchema = z.object({ path: z.string(), size: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
const manifestSchema = z.looseObject({ id: z.string(), name: z.string(), version: z.string(), manifestHash: z.string(), files: z.array(fileSchema) });
const codebasesSchema = z.looseObject({
  items: z.array(z.looseObject({ url: z.string(), kind: z.enum(['package-server', 'core']), serverId: z.string().optional(), name: z.string().optional() })),
});
type FileEntry = z.output<typeof fileSchema>;
type Codebase = z.output<typeof codebasesSchema>['items'][number];

export interface DownloadPackageOptions {
  client: CoreClient;
  /** The agent's credential (`id.secret`). */
  bearer: string;
  agentId: string;
  /** Package id, `name@version` or name (newest version). */
  package: string;
  /** Where the files go (created if needed). */
  destDir: string;
  /** Per request: no bytes for this long fails that codebase. @default 30_000 */
  timeoutMs?: number;
  logger?: Logger;
  signal?: AbortSignal;
  /** The node:http(s) Agent for a codebase URL (the agent's transport: direct or through a gateway). @default Node's global agents */
  agentFor?: (url: string) => HttpAgent;
  /** Sending the download status again while the core cannot take it (see {@link sendDownloadReport}). */
  reportRetry?: DownloadReportRetry;
}

export interface DownloadPackageResult {
  id: string;
  name: string;
  version: string;
  files: number;
  /** Bytes fetched over the network (resumed bytes are not fetched twice). */
  bytes: number;
  /** Bytes per codebase URL. */
  fromCodebase: Record<string, number>;
  /**
   * Settles when the core took the download status (true), or it was given up (false).
   * When the core could not take it at once (down, or its store unavailable), the download
   * returns anyway and the status is sent again in the background.
   */
  reported: Promise<boolean>;
}

/** The destination of a package path inside `destDir`, refusing anything that would leave it. */
export function destinationOf(destDir: string, path: string): string {
  const segs = path.split('/');
  if (path.startsWith('/') || segs.some((s) => s === '' || s === '.' || s === '..' || /[\\\0]/.test(s))) {
    throw new OutpostError(PackageDownloadErrors.BAD_PATH, `refusing package path '${path}'`);
  }
  const root = resolve(destDir);
  const out = resolve(root, ...segs);
  if (!out.startsWith(root + sep)) throw new OutpostError(PackageDownloadErrors.BAD_PATH, `refusing package path '${path}'`);
  return out;
}

function get(url: URL, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal | undefined, agent: HttpAgent | undefined): Promise<IncomingMessage> {
  return new Promise((resolvePromise, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { headers, ...(signal ? { signal } : {}), ...(agent ? { agent } : {}) });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('response', (res) => {
      res.setTimeout(timeoutMs, () => res.destroy(new Error(`no bytes for ${timeoutMs} ms`)));
      resolvePromise(res);
    });
    req.on('error', reject);
    req.end();
  });
}

async function hashPrefix(path: string, length: number): Promise<Hash> {
  const h = createHash('sha256');
  if (length > 0) for await (const c of createReadStream(path, { end: length - 1 }) as AsyncIterable<Buffer>) h.update(c);
  return h;
}

/** One file from one codebase into `partial`, resuming what is there. Returns bytes fetched. */
async function fetchInto(cb: Codebase, f: FileEntry, partial: string, o: DownloadPackageOptions): Promise<number> {
  await (await open(partial, 'a')).close();
  let have = (await stat(partial)).size;
  if (have > f.size) {
    await truncate(partial, 0);
    have = 0;
  }
  let hash = await hashPrefix(partial, have);
  let fetched = 0;
  if (have < f.size) {
    const url = new URL(`${cb.url.replace(/\/+$/, '')}/${f.path.split('/').map(encodeURIComponent).join('/')}`);
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (cb.kind === 'core') headers.authorization = `Bearer ${o.bearer}`;
    if (have > 0) headers.range = `bytes=${have}-`;
    const res = await get(url, headers, o.timeoutMs ?? 30_000, o.signal, o.agentFor?.(url.href));
    if (res.statusCode === 200 && have > 0) {
      await truncate(partial, 0);
      have = 0;
      hash = createHash('sha256');
    } else if (res.statusCode !== (have > 0 ? 206 : 200)) {
      res.resume();
      if (res.statusCode === 416) await truncate(partial, 0);
      throw new Error(`HTTP ${res.statusCode}`);
    }
    let total = have;
    await pipeline(
      res,
      new Transform({
        transform(chunk: Buffer, _e, done) {
          if (total + chunk.length > f.size) return done(new Error(`more than ${f.size} bytes`));
          total += chunk.length;
          fetched += chunk.length;
          hash.update(chunk);
          done(null, chunk);
        },
      }),
      createWriteStream(partial, { flags: 'a' }),
    );
    if (total !== f.size) throw new Error(`${total} of ${f.size} bytes`);
  }
  const got = hash.digest('hex');
  if (got !== f.sha256) {
    await rm(partial, { force: true });
    throw new Error(`sha256 mismatch (got ${got})`);
  }
  return fetched;
}

async function alreadyThere(dest: string, f: FileEntry): Promise<boolean> {
  const st = await stat(dest).catch(() => undefined);
  if (!st?.isFile() || st.size !== f.size) return false;
  return (await hashPrefix(dest, f.size)).digest('hex') === f.sha256;
}

/**
 * Downloads a package by name: asks the core for its manifest and its codebases (closest
 * first), downloads each file from the first codebase that works (resuming a partial
 * with Range, falling to the next codebase on any failure), verifies every file's
 * sha256, and reports the outcome to the core as a download status.
 */
export async function downloadPackage(o: DownloadPackageOptions): Promise<DownloadPackageResult> {
  const log = (o.logger ?? silentLogger()).child({ module: 'agent-packages', package: o.package });
  const manifest = manifestSchema.parse(await o.client.call('GET', `/packages/${encodeURIComponent(o.package)}/manifest`, { bearer: o.bearer }));
  // Waits for the first attempt only: a status the core cannot take now goes on being sent in the background.
  const report = async (body: Record<string, unknown>): Promise<{ done: Promise<boolean> }> => {
    const sending = sendDownloadReport(() => o.client.call('POST', `/packages/${encodeURIComponent(manifest.id)}/downloads`, { bearer: o.bearer, body }), { log, signal: o.signal, retry: o.reportRetry });
    await sending.first;
    return { done: sending.done };
  };
  const result: Omit<DownloadPackageResult, 'reported'> = { id: manifest.id, name: manifest.name, version: manifest.version, files: manifest.files.length, bytes: 0, fromCodebase: {} };
  let lastCodebase: string | undefined;
  try {
    const { items } = codebasesSchema.parse(
      await o.client.call('GET', `/packages/${encodeURIComponent(manifest.id)}/codebases?agent=${encodeURIComponent(o.agentId)}`, { bearer: o.bearer }),
    );
    if (items.length === 0) throw new OutpostError(PackageDownloadErrors.NO_CODEBASE, `package ${manifest.name} has no codebase yet`);
    await mkdir(o.destDir, { recursive: true });
    for (const f of manifest.files) {
      const dest = destinationOf(o.destDir, f.path);
      if (await alreadyThere(dest, f)) continue;
      await mkdir(join(dest, '..'), { recursive: true });
      const partial = `${dest}.outpost-part`;
      const errors: string[] = [];
      let done = false;
      for (const cb of items) {
        if (o.signal?.aborted) throw new Error('aborted');
        try {
          const n = await fetchInto(cb, f, partial, o);
          result.bytes += n;
          result.fromCodebase[cb.url] = (result.fromCodebase[cb.url] ?? 0) + n;
          await rename(partial, dest);
          lastCodebase = cb.url;
          done = true;
          break;
        } catch (err) {
          errors.push(`${cb.url}: ${(err as Error).message}`);
          log.info({ file: f.path, codebase: cb.url, err: (err as Error).message }, 'codebase failed; trying the next');
        }
      }
      if (!done) throw new OutpostError(PackageDownloadErrors.DOWNLOAD_FAILED, `${f.path}: every codebase failed: ${errors.join('; ')}`);
    }
  } catch (err) {
    await report({ state: 'failed', error: (err as Error).message.slice(0, 2000), ...(lastCodebase ? { codebase: lastCodebase } : {}) });
    throw err;
  }
  const { done: reported } = await report({ state: 'ok', bytes: result.bytes, ...(lastCodebase ? { codebase: lastCodebase } : {}) });
  log.info({ files: result.files, bytes: result.bytes }, 'package downloaded');
  return { ...result, reported };
}
