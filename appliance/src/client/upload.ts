import { createReadStream } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { OutpostError } from '@outpost/common';
import { ApplianceErrors } from '../errors.js';
import { ApiError, type Target } from './api.js';

/** What the core answers to one upload request of the packages upload protocol. */
export interface UploadAnswer {
  path: string;
  received: number;
  complete: boolean;
  package: string;
}

/** `a/b c.txt` → `a/b%20c.txt`: each segment encoded, slashes kept. */
export const encodeFilePath = (path: string): string => path.split('/').map(encodeURIComponent).join('/');

/**
 * Streams bytes `[offset, size)` of the local file `file` to
 * `PUT /api/v1/packages/:id/files/<path>?offset=N` (the core's resumable upload
 * protocol). Never waits longer than `idleMs` without progress. Errors the core answers
 * with are {@link ApiError}s (`CORE_PACKAGE_UPLOAD_OFFSET` carries `details.received`);
 * a broken connection is `APPLIANCE_CORE_UNREACHABLE`.
 */
export function uploadFile(target: Target, packageId: string, path: string, file: string, offset: number, size: number, idleMs = 30_000): Promise<UploadAnswer> {
  const url = new URL(`${target.url}/api/v1/packages/${encodeURIComponent(packageId)}/files/${encodeFilePath(path)}?offset=${offset}`);
  const length = size - offset;
  return new Promise<UploadAnswer>((resolve, reject) => {
    let settled = false;
    const done = (err: Error | undefined, value?: UploadAnswer): void => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(value!);
    };
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${target.token}`,
        accept: 'application/json',
        'content-type': 'application/octet-stream',
        'content-length': String(length),
      },
    });
    req.setTimeout(idleMs, () => req.destroy(new Error(`no progress for ${idleMs} ms`)));
    req.on('error', (cause) =>
      done(new OutpostError(ApplianceErrors.CORE_UNREACHABLE, `upload of ${path} to ${target.url} broke off: ${cause.message}`, { cause })),
    );
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        // An answer is small JSON; never hold more than 1 MiB of it.
        if (bytes < 1 << 20) chunks.push(c);
        bytes += c.length;
      });
      res.on('error', (cause) => done(new OutpostError(ApplianceErrors.CORE_UNREACHABLE, `upload of ${path}: ${cause.message}`, { cause })));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300 && isAnswer(body)) return done(undefined, body);
        const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
        if (e && typeof e.code === 'string' && typeof e.message === 'string') {
          const details = typeof e.details === 'object' && e.details !== null ? (e.details as Record<string, unknown>) : undefined;
          return done(new ApiError(e.code, e.message, status, details));
        }
        done(new OutpostError(ApplianceErrors.BAD_RESPONSE, `PUT ${url.pathname}: ${status}, not the expected JSON: ${text.slice(0, 120)}`));
      });
    });
    if (length <= 0) {
      req.end();
      return;
    }
    const body = createReadStream(file, { start: offset, end: size - 1, highWaterMark: 1 << 20 });
    body.on('error', (cause) => {
      req.destroy();
      done(new OutpostError(ApplianceErrors.PACKAGE_DIR, `cannot read ${file}: ${cause.message}`, { cause }));
    });
    body.pipe(req);
  });
}

function isAnswer(v: unknown): v is UploadAnswer {
  const o = v as Partial<UploadAnswer> | undefined;
  return typeof o === 'object' && o !== null && typeof o.received === 'number' && typeof o.complete === 'boolean';
}
