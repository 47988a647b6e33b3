// One load-generator process of bench:gateway. Reads its job as JSON from argv[2]:
//   { mode: idle|hs|req|bulk, via: haproxy|ours, port, localAddress, targets[], count,
//     concurrency, durationMs, resume, bulkBytes, cert, key, ca }
// and talks to the parent over IPC: { t: 'ready', ... } / { t: 'done', ... }; the parent
// sends { t: 'close' } to end an idle hold. Every wait is bounded.
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';

const job = JSON.parse(process.argv[2]);
const creds = { cert: readFileSync(job.cert), key: readFileSync(job.key), ca: readFileSync(job.ca) };
const END = Buffer.from('\r\n\r\n');
let nextTarget = 0;
const target = () => job.targets[nextTarget++ % job.targets.length];
setTimeout(() => process.exit(3), job.deadlineMs ?? 600_000).unref();

/** Reads one HTTP response (Content-Length) from `sock`; resolves with its size. */
function readResponse(sock, state) {
  return new Promise((resolve, reject) => {
    const onData = (chunk) => {
      if (state.need === undefined) {
        state.buf = state.buf.length ? Buffer.concat([state.buf, chunk]) : chunk;
        const end = state.buf.indexOf(END);
        if (end < 0) return;
        const head = state.buf.subarray(0, end).toString('latin1');
        state.size = state.need = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        chunk = state.buf.subarray(end + 4);
        state.buf = Buffer.alloc(0);
      }
      const take = Math.min(chunk.length, state.need);
      state.need -= take;
      if (take < chunk.length) state.buf = chunk.subarray(take);
      if (state.need === 0) {
        state.need = undefined;
        cleanup();
        resolve(state.size);
      }
    };
    const onErr = (e) => {
      cleanup();
      reject(e ?? new Error('closed'));
    };
    const cleanup = () => {
      sock.off('data', onData);
      sock.off('error', onErr);
      sock.off('close', onErr);
    };
    sock.on('data', onData);
    sock.once('error', onErr);
    sock.once('close', onErr);
    if (state.buf.length) onData(Buffer.alloc(0));
  });
}

/** A connection ready for HTTP to the backend: TLS with our client certificate, plus CONNECT for ours. */
function open(session) {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port: job.port, localAddress: job.localAddress, ...creds, servername: 'localhost', ...(session ? { session } : {}) });
    const timer = setTimeout(() => fail(new Error('open timeout')), 20_000);
    const fail = (e) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    const state = { buf: Buffer.alloc(0), need: undefined, session: undefined, resumed: false };
    sock.once('session', (s) => (state.session = s));
    sock.once('error', fail);
    sock.once('secureConnect', () => {
      state.resumed = sock.isSessionReused();
      if (job.via === 'haproxy') {
        clearTimeout(timer);
        sock.off('error', fail);
        return resolve({ sock, state });
      }
      const t = target();
      sock.write(`CONNECT ${t} HTTP/1.1\r\nHost: ${t}\r\n\r\n`);
      const onData = (chunk) => {
        state.buf = Buffer.concat([state.buf, chunk]);
        const end = state.buf.indexOf(END);
        if (end < 0) return;
        sock.off('data', onData);
        if (!state.buf.subarray(0, 16).toString('latin1').includes(' 200')) return fail(new Error(state.buf.toString('latin1').slice(0, 200)));
        state.buf = state.buf.subarray(end + 4);
        clearTimeout(timer);
        sock.off('error', fail);
        resolve({ sock, state });
      };
      sock.on('data', onData);
    });
  });
}

async function idle() {
  const conns = [];
  let failed = 0;
  let firstError;
  let i = 0;
  const worker = async () => {
    while (i < job.count) {
      i++;
      try {
        const c = await open();
        c.sock.setKeepAlive(true, 30_000);
        c.sock.on('error', () => undefined);
        c.sock.on('close', () => c.state.closed = true);
        conns.push(c);
      } catch (e) {
        failed++;
        firstError ??= e.message;
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  process.send({ t: 'ready', opened: conns.length, failed, firstError });
  await new Promise((r) => {
    process.on('message', (m) => m.t === 'close' && r());
    setTimeout(r, job.holdMs ?? 300_000);
  });
  const alive = conns.filter((c) => !c.state.closed).length;
  for (const c of conns) c.sock.destroy();
  process.send({ t: 'done', alive });
}

async function timed(loop) {
  const until = Date.now() + job.durationMs;
  const counts = { ops: 0, bytes: 0, errors: 0, resumed: 0 };
  let firstError;
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (Date.now() < until) {
        try {
          await loop(counts, until);
        } catch (e) {
          counts.errors++;
          firstError ??= e.message;
          if (counts.errors > 1000) return;
        }
      }
    }),
  );
  process.send({ t: 'done', ...counts, firstError });
}

const GET = (path) => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: backend\r\n\r\n`);
let session;
const modes = {
  // A full connection: handshake (resumed with the last ticket when job.resume), one request, close.
  hs: () =>
    timed(async (counts) => {
      const c = await open(job.resume ? session : undefined);
      if (c.state.resumed) counts.resumed++;
      c.sock.write(GET('/'));
      await readResponse(c.sock, c.state);
      if (job.resume) session = c.state.session ?? session;
      c.sock.destroy();
      counts.ops++;
    }),
  req: () =>
    timed(async (counts, until) => {
      const c = await open();
      try {
        while (Date.now() < until) {
          c.sock.write(GET('/'));
          counts.bytes += await readResponse(c.sock, c.state);
          counts.ops++;
        }
      } finally {
        c.sock.destroy();
      }
    }),
  bulk: () =>
    timed(async (counts, until) => {
      const c = await open();
      try {
        while (Date.now() < until) {
          c.sock.write(GET(`/bulk/${job.bulkBytes}`));
          counts.bytes += await readResponse(c.sock, c.state);
          counts.ops++;
        }
      } finally {
        c.sock.destroy();
      }
    }),
  idle,
};
await modes[job.mode]();
process.exit(0);
