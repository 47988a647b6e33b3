import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { CommonErrors, OutpostError, parseJsonBody, readBodyText, type Logger } from '@outpost/common';
import { agentEventsBody, type Via } from './protocol.js';
import type { AgentService } from './agent-service.js';

/** Largest status-event body an agent may post. */
export const AGENT_EVENTS_LIMIT = 4 * 1024 * 1024;
const REQUEST_ID_RE = /^[\w.:-]{1,128}$/;

function send(res: ServerResponse, status: number, body: unknown, requestId: string): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), 'x-request-id': requestId });
  res.end(json);
}

/** The body of a status post: JSON only (415 otherwise, as the koa app), read as text within `limit`. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(req.headers['content-type'] ?? '')) {
    return Promise.reject(new OutpostError(CommonErrors.UNSUPPORTED_MEDIA_TYPE, 'the request body must be application/json', { status: 415 }));
  }
  const declared = req.headers['content-length'];
  return readBodyText(req, limit, declared === undefined ? undefined : Number(declared));
}

/**
 * The two calls every agent makes on every run, `GET /api/v1/agent/work` and
 * `POST /api/v1/agent/events`, answered straight from node:http: at 50,000 agents they
 * are 100,000 requests in a few seconds, and koa's per-request context, router and
 * child logger were a third of the serving cost. Same credentials, body rules, answers
 * and error shape (`{ error: { code, message, details? } }`, 500 without internals,
 * logged with the request id) as the koa app; every other request goes to koa.
 */
export function fastAgentRoutes(svc: AgentService, log: Logger): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const work = req.method === 'GET' && path === '/api/v1/agent/work';
    const events = req.method === 'POST' && path === '/api/v1/agent/events';
    if (!work && !events) return false;
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID_RE.test(incoming) ? incoming : randomUUID();
    const handle = async (): Promise<unknown> => {
      const id = await svc.authenticate(req.headers.authorization);
      if (events) {
        return svc.events(id, parseJsonBody(agentEventsBody, await readBody(req, AGENT_EVENTS_LIMIT)).events);
      }
      const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
      const port = Number(params.get('port'));
      let addr: string | undefined;
      if (Number.isInteger(port) && port > 0 && port < 65536) {
        const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
        addr = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
      }
      const v = params.get('via');
      const via: Via = v === 'udp' || v === 'ws' ? v : 'poll';
      return svc.work(id, via, addr);
    };
    handle().then(
      (body) => send(res, 200, body, requestId),
      (err: unknown) => {
        if (err instanceof OutpostError && err.status < 500) {
          send(res, err.status, { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } }, requestId);
        } else if (err instanceof OutpostError) {
          log.error({ err, reqId: requestId }, 'request failed');
          send(res, err.status, { error: { code: err.code, message: err.message } }, requestId);
        } else {
          log.error({ err, reqId: requestId }, 'unexpected error');
          send(res, 500, { error: { code: CommonErrors.INTERNAL, message: `internal error (request id ${requestId})` } }, requestId);
        }
      },
    );
    return true;
  };
}

/** Puts {@link fastAgentRoutes} in front of the server's koa handler. */
export function installFastAgentRoutes(server: Server, svc: AgentService, log: Logger): void {
  const fast = fastAgentRoutes(svc, log);
  const others = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (fast(req, res)) return;
    for (const l of others) l(req, res);
  });
}
