import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';

export interface Listening {
  server: Server;
  host: string;
  port: number;
  /** `http://host:port` (or `https://` with TLS), with IPv6 hosts bracketed and the any-address shown as 127.0.0.1. */
  url: string;
  close(): Promise<void>;
}

/**
 * TLS for a listener: serve HTTPS instead of HTTP. PEM strings or buffers; `cert` may
 * hold the chain. With `requestCert`, clients are asked for a certificate chained to
 * `ca` (unverified clients are still let in unless `rejectUnauthorized`; the app reads
 * `ctx.req.socket.authorized`).
 */
export interface ListenTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA certificates for client certificates. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Ask clients for a certificate. @default false */
  requestCert?: boolean;
  /** Refuse clients without a valid certificate. @default false */
  rejectUnauthorized?: boolean;
}

/** Host part of a URL for a bound address. */
export function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Starts an HTTP (or, with `tls`, HTTPS) server for a koa app; port 0 picks a free port. */
export async function listenHttp<S>(app: Koa<S>, options: { host: string; port: number; tls?: ListenTlsOptions | undefined }): Promise<Listening> {
  const tls = options.tls;
  const server: Server = tls
    ? createHttpsServer(
        {
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca === undefined ? {} : { ca: tls.ca }),
          requestCert: tls.requestCert ?? false,
          rejectUnauthorized: tls.rejectUnauthorized ?? false,
          minVersion: 'TLSv1.2',
        },
        app.callback(),
      )
    : createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 300_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return {
    server,
    host: addr.address,
    port: addr.port,
    url: `${tls ? 'https' : 'http'}://${urlHost(addr.address)}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      }),
  };
}
