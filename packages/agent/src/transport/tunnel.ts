import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';

export interface GatewayEndpoint {
  /** `https://host:port` of a gateway. */
  url: string;
}

export interface TunnelCredentials {
  /** CA certificates to trust for the gateway's and the core's TLS. */
  ca: string[];
  /** The agent's certificate and key (absent before enrollment). */
  cert?: string | undefined;
  key?: string | undefined;
}

/**
 * Opens a TLS connection to a gateway, asks it to `CONNECT target`, and resolves with
 * the socket once the gateway answered 200 (the bytes after are the target's). Bounded
 * by `timeoutMs`; a refusal rejects with the gateway's status and error code.
 */
export function openTunnel(gateway: GatewayEndpoint, target: string, creds: TunnelCredentials, timeoutMs: number): Promise<TLSSocket> {
  const u = new URL(gateway.url);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({
      host,
      port: Number(u.port || 443),
      servername: /^[\d.]+$|:/.test(host) ? undefined : host,
      ca: creds.ca.length > 0 ? creds.ca : undefined,
      ...(creds.cert && creds.key ? { cert: creds.cert, key: creds.key } : {}),
    });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`no tunnel to ${target} via ${gateway.url} within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    sock.once('error', fail);
    sock.once('secureConnect', () => sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > 16_384) fail(new Error('oversized answer from the gateway'));
        return;
      }
      sock.off('data', onData);
      const head = buf.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      if (status !== 200) {
        const code = /"code":"([A-Z_]+)"/.exec(buf.toString('latin1'))?.[1];
        fail(Object.assign(new Error(`the gateway ${gateway.url} refused CONNECT ${target}: ${status} ${code ?? ''}`.trim()), { status, code }));
        return;
      }
      clearTimeout(timer);
      sock.off('error', fail);
      sock.pause();
      const rest = buf.subarray(end + 4);
      if (rest.length > 0) sock.unshift(rest);
      resolve(sock);
    };
    sock.on('data', onData);
  });
}

/** Wraps a tunnel in TLS to an `https:` target (the core's own certificate, checked against `ca`). */
export function tlsOverTunnel(socket: Duplex, servername: string, ca: string[]): TLSSocket {
  return tlsConnect({ socket, servername: /^[\d.]+$|:/.test(servername) ? undefined : servername, ca: ca.length > 0 ? ca : undefined });
}
