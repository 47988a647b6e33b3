import { request } from 'node:https';
import type { Readable } from 'node:stream';
import type { ParentRecord } from './model.js';

/** What the parent's link listener answered: its status and headers, the body still to read. */
export interface LinkResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/**
 * A GET on the parent's link listener (mutual TLS with this core's link certificate, the
 * parent's CA pinned, its certificate naming the parent's core id). `idleMs` bounds each
 * silence, before the answer and between its bytes: a stalled request fails rather than
 * hang for ever.
 */
export function linkGet(parent: ParentRecord, path: string, idleMs: number, headers: Record<string, string> = {}): Promise<LinkResponse> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, parent.url), {
      ca: parent.caPem,
      cert: parent.certPem,
      key: parent.keyPem,
      headers,
      checkServerIdentity: (_h, cert) => (cert.subject?.CN === parent.parentId ? undefined : new Error('not the parent')),
      timeout: idleMs,
    });
    let response: Readable | undefined;
    req.on('timeout', () => {
      const err = new Error(`${path}: the parent sent nothing for ${idleMs} ms`);
      req.destroy(err);
      response?.destroy(err);
    });
    req.on('response', (res) => {
      response = res;
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    req.on('error', reject);
    req.end();
  });
}
