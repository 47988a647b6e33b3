// The benchmark's backend, behind both proxies: a minimal HTTP/1.1 responder on
// 0.0.0.0:PORT in BENCH_BACKEND_WORKERS node:cluster workers (so 50,000 upstream
// connections fit under 20,000 open files per process). `GET /bulk/N` answers N bytes,
// anything else a 64-byte body. Prints `{"port":P}` when every worker listens.
import cluster from 'node:cluster';
import { createServer } from 'node:net';

const port = Number(process.argv[2] ?? 0);
const workers = Number(process.env.BENCH_BACKEND_WORKERS ?? 4);
const SMALL = Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 64\r\n\r\n${'x'.repeat(64)}`);
const CHUNK = Buffer.alloc(1 << 20, 0x61);
const END = Buffer.from('\r\n\r\n');

if (cluster.isPrimary) {
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('listening', () => {
      if (++ready === workers) process.stdout.write(`${JSON.stringify({ port })}\n`);
    });
  }
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    process.exit(0);
  });
} else {
  const server = createServer((sock) => {
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (let i = 0; i < 1000; i++) {
        const end = buf.indexOf(END);
        if (end < 0) break;
        const line = buf.subarray(0, buf.indexOf('\r\n')).toString('latin1');
        buf = buf.subarray(end + 4);
        const m = /^GET \/bulk\/(\d+) /.exec(line);
        if (!m) {
          sock.write(SMALL);
          continue;
        }
        let left = Number(m[1]);
        sock.write(`HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ${left}\r\n\r\n`);
        const more = () => {
          while (left > 0) {
            const n = Math.min(left, CHUNK.length);
            left -= n;
            if (!sock.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void sock.once('drain', more);
          }
        };
        more();
      }
    });
  });
  server.listen({ host: '0.0.0.0', port, backlog: 8192 });
}
