import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';

/** Open file descriptors of this process. */
export const openFds = (): number => readdirSync('/proc/self/fd').length;

/** A TLS client to the gateway; resolves once the handshake is done (or rejects). */
export function dial(port: number, o: { cert?: string; key?: string; ca: string; session?: Buffer }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca: o.ca, servername: 'localhost', ...(o.cert ? { cert: o.cert, key: o.key } : {}), ...(o.session ? { session: o.session } : {}) });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes `text`, reads until the first `\r\n\r\n`-terminated head (+ body if `Content-Length`) or close; 5 s at most. */
export function exchange(sock: TLSSocket, text: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const timer = setTimeout(() => finish(), 5_000);
    const finish = (): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      resolve(out);
    };
    const onData = (d: Buffer): void => {
      out += d.toString('latin1');
      const end = out.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /content-length: (\d+)/i.exec(out.slice(0, end));
      if (!m || out.length - end - 4 >= Number(m[1])) finish();
    };
    sock.on('data', onData);
    sock.once('close', finish);
    sock.write(text);
  });
}

/** Runs a command with stdin text; resolves with stdout+stderr and the exit code; `timeoutMs` bound. */
export function run(cmd: string, args: string[], stdin: string, timeoutMs = 10_000): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ out, code });
    });
    p.stdin.on('error', () => undefined);
    p.stdin.end(stdin);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every 20 ms until it is truthy or `ms` pass. */
export async function until(fn: () => boolean | Promise<boolean>, ms = 5_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await sleep(20);
  }
  return false;
}
