import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { GatewayErrors, type GatewayErrorCode } from './errors.js';
import type { RequestHead } from './request-head.js';

/**
 * Forwards one `POST /api/v1/enroll` of a certificate-less client to a core (the only
 * thing such a client may do): the body is read in full first (bounded by `maxBody`,
 * `Content-Length` only), sent with `Connection: close`, and the core's answer is piped
 * back; then both sides close. With several core URLs (one estate's cores), a core that
 * cannot be connected to is passed over for the next; once the request is sent it is not
 * sent again.
 */
export function forwardEnrollment(
  client: TLSSocket,
  head: RequestHead,
  opts: { coreUrls: readonly string[]; caPem: string; maxBody: number; timeoutMs: number },
  refuse: (status: number, code: GatewayErrorCode, message: string) => void,
): void {
  const te = head.headers.get('transfer-encoding');
  const length = Number(head.headers.get('content-length') ?? 'NaN');
  if (te !== undefined || !Number.isInteger(length) || length < 0) {
    refuse(400, GatewayErrors.BAD_REQUEST, 'enrollment needs a Content-Length body');
    return;
  }
  if (length > opts.maxBody) {
    refuse(431, GatewayErrors.HEAD_TOO_LARGE, `the enrollment body is larger than ${opts.maxBody} bytes`);
    return;
  }
  let body = head.rest;
  const timer = setTimeout(() => refuse(408, GatewayErrors.HEAD_TIMEOUT, 'the enrollment body did not arrive in time'), opts.timeoutMs);
  timer.unref();
  const send = (attempt = 0): void => {
    clearTimeout(timer);
    const url = new URL(opts.coreUrls[attempt] as string);
    const secure = url.protocol === 'https:';
    const port = Number(url.port || (secure ? 443 : 80));
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const upstream: Socket = secure ? tlsConnect({ host, port, ca: opts.caPem, servername: host }) : netConnect({ host, port });
    const path = `${url.pathname.replace(/\/+$/, '')}/api/v1/enroll`;
    const done = (): void => {
      upstream.destroy();
      client.destroy();
    };
    upstream.setTimeout(opts.timeoutMs * 3, done);
    let connected = false;
    upstream.once(secure ? 'secureConnect' : 'connect', () => {
      connected = true;
      upstream.write(
        `POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\nconnection: close\r\n` +
          `${head.headers.has('x-request-id') ? `x-request-id: ${head.headers.get('x-request-id')}\r\n` : ''}\r\n`,
      );
      upstream.write(body.subarray(0, length));
      upstream.pipe(client);
    });
    const onClientClose = (): void => void upstream.destroy();
    upstream.once('error', () => {
      upstream.destroy();
      if (client.destroyed) return;
      if (!connected && attempt + 1 < opts.coreUrls.length) {
        client.off('close', onClientClose);
        send(attempt + 1);
        return;
      }
      refuse(502, GatewayErrors.UPSTREAM_UNREACHABLE, 'cannot reach the core to enroll');
    });
    upstream.once('end', () => client.end());
    client.once('close', onClientClose);
  };
  if (body.length >= length) {
    send();
    return;
  }
  const onData = (chunk: Buffer): void => {
    body = Buffer.concat([body, chunk]);
    if (body.length >= length) {
      client.off('data', onData);
      client.pause();
      send();
    }
  };
  client.on('data', onData);
  client.resume();
}
