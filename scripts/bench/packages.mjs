#!/usr/bin/env node
// Package server vs nginx (sendfile) on the same files with the same clients, plus the
// staging overhead of enable → ready on 10 package servers. Prints one summary line and
// writes bench-results/packages.json. Temp files under /tmp, deleted at the end.
//
//   npm run bench:packages                     # full size (1 GiB, 200×10 MiB, 64 KiB, 10×500 MiB)
//   BENCH_SCALE=0.1 npm run bench:packages     # smaller files, same shape
//   BENCH_ONLY=ab npm run bench:packages       # only some of (a) (b) (c) (d)
//   BENCH_READ_BUFFERS=67108864 ...            # the package server's http.readBuffers
//   BENCH_MEM=1 ...                            # the package server's memory every second
//   BENCH_PROF=/tmp/prof ...                   # CPU profiles of the package server and of (d)'s first (written when they stop)
//   BENCH_TRACE=/tmp/trace ...                 # (d): each package server's debug log there (per-file timings)
//   BENCH_D_ROUNDS=3 ...                       # (d): staging rounds, each between two raw rounds (median overhead)
//   BENCH_D_EXTRA=1 ...                        # (d): also raw without fsync, and a plain Node client, once
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore } from '@outpost/core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const MiB = 1024 * 1024;
const BIG = Math.round(1024 * MiB * SCALE);
const MEDIUM = Math.round(10 * MiB * Math.min(1, SCALE * 4));
const SMALL = 64 * 1024;
const STAGE = Math.round(500 * MiB * SCALE);
const CONCURRENT = 200;
const ONLY = process.env.BENCH_ONLY ?? 'abcd';
const DEADLINE = Date.now() + 15 * 60_000;
const log = (...a) => console.error('[bench:packages]', ...a);

const run = (cmd, args, timeout = 300_000) =>
  new Promise((res, rej) => execFile(cmd, args, { timeout, maxBuffer: 16 * MiB }, (err, stdout, stderr) => (err ? rej(new Error(`${cmd}: ${err.message} ${stderr}`)) : res(stdout))));
const freePort = async () => {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
};
const sha = (b) => createHash('sha256').update(b).digest('hex');
async function writeRandom(path, size) {
  const fh = await open(path, 'w');
  const h = createHash('sha256');
  const chunk = randomBytes(Math.min(size, 8 * MiB));
  for (let done = 0; done < size; ) {
    const n = Math.min(chunk.length, size - done);
    const part = chunk.subarray(0, n);
    // Vary each chunk so files do not compress or dedupe trivially.
    part.writeUInt32LE(done >>> 0, 0);
    await fh.write(part);
    h.update(part);
    done += n;
  }
  await fh.close();
  return h.digest('hex');
}
const waitUntil = async (check, what, timeoutMs = 300_000, everyMs = 100) => {
  const end = Math.min(Date.now() + timeoutMs, DEADLINE);
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
};

// A separate-process HTTP client: N concurrent GETs of one URL, total bytes / wall time.
const CLIENT = `
import http from 'node:http';
const [url, n, rounds] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const agent = new http.Agent({ keepAlive: true, maxSockets: n });
let bytes = 0; const t0 = performance.now();
const one = () => new Promise((res, rej) => http.get(url, { agent }, (r) => { r.on('data', (c) => { bytes += c.length; }); r.on('end', res); r.on('error', rej); }).on('error', rej));
for (let i = 0; i < rounds; i++) await Promise.all(Array.from({ length: n }, one));
const s = (performance.now() - t0) / 1000;
process.stdout.write(JSON.stringify({ bytes, seconds: s, mbps: bytes / s / 1048576 }));
agent.destroy();
`;
const nodeClient = async (url, n, rounds) => JSON.parse(await run(process.execPath, ['--input-type=module', '-e', CLIENT, url, String(n), String(rounds)]));
const curlOne = async (url) => {
  const out = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url]);
  const [bytes, secs] = out.trim().split(' ').map(Number);
  return { bytes, seconds: secs, mbps: bytes / secs / MiB };
};
const wrk = async (url) => {
  const out = await run('wrk', ['-t2', `-c${CONCURRENT}`, '-d5s', '--latency', url], 60_000);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const tr = /Transfer\/sec:\s+([\d.]+)(\w+)/.exec(out);
  const unit = { B: 1 / MiB, KB: 1 / 1024, MB: 1, GB: 1024 }[tr?.[2] ?? 'MB'] ?? 1;
  return { rps, mbps: Number(tr?.[1] ?? 0) * unit };
};

// The package server runs with the environment its systemd unit sets (outpost-package-server.service).
const PS_ENV = { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' };
const PS_CHILD = `
import { validateConfig } from '@outpost/common';
import { createPackageServer, packageServerConfigSchema } from '@outpost/package-server';
const trace = process.env.BENCH_TRACE_FILE;
const { pino } = trace ? await import('pino') : {};
const deps = trace ? { logger: pino({ level: 'debug', base: null }, pino.destination({ dest: trace, sync: true })) } : {};
const s = createPackageServer(validateConfig(packageServerConfigSchema, JSON.parse(process.argv[1]), { file: '<bench>' }), deps);
await s.start();
process.stdout.write(JSON.stringify({ id: s.id, url: s.url }) + '\\n');
process.on('SIGTERM', () => s.stop().then(() => process.exit(0)));
if (process.env.BENCH_MEM) setInterval(() => { const m = process.memoryUsage(); process.stderr.write('[ps mem] ' + Object.entries(m).map(([k, v]) => k + ' ' + (v / 1048576).toFixed(0)).join(', ') + '\\n'); }, 1000).unref();
`;

const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-pkg-'));
await chmod(dir, 0o755);
const procs = [];
let core;
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const result = { when: new Date().toISOString(), loadAverageAtStart: loadavg(), scale: SCALE, sizes: { big: BIG, medium: MEDIUM, small: SMALL, stage: STAGE } };
try {
  log('dir', dir, '; load average', load());
  // ------------------------------------------------------------ files
  const www = join(dir, 'www');
  await mkdir(www, { recursive: true });
  await chmod(www, 0o755);
  // A case left out by BENCH_ONLY gets a small file (no minutes spent writing 1 GiB for nothing).
  const files = { 'big.bin': ONLY.includes('a') ? BIG : SMALL, 'medium.bin': ONLY.includes('b') ? MEDIUM : SMALL, 'small.bin': SMALL };
  const manifest = [];
  for (const [name, size] of Object.entries(files)) manifest.push({ path: name, size, sha256: await writeRandom(join(www, name), size) });
  for (const name of Object.keys(files)) await chmod(join(www, name), 0o644);

  // ------------------------------------------------------------ core + our package server (child process)
  core = createCore(validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { host: '127.0.0.1', port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: '<bench>' }));
  await core.start();
  const api = async (method, path, body, headers = {}) => {
    const res = await fetch(`${core.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${core.adminToken}`, ...(body && !Buffer.isBuffer(body) && typeof body.pipe !== 'function' ? { 'content-type': 'application/json' } : {}), ...headers }, body: body === undefined ? undefined : Buffer.isBuffer(body) || typeof body.pipe === 'function' ? body : JSON.stringify(body), duplex: 'half' });
    const t = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${t}`);
    return t ? JSON.parse(t) : undefined;
  };
  const { createReadStream } = await import('node:fs');
  const upload = async (id, path, file) => api('PUT', `/packages/${id}/files/${path}`, createReadStream(file), { 'content-type': 'application/octet-stream' });
  const pkg = await api('POST', '/packages', { name: 'bench', version: '1', files: manifest });
  for (const f of manifest) await upload(pkg.id, f.path, join(www, f.path));
  const { token } = await core.createEnrollmentToken({ for: 'site-server', uses: 20, grant: { services: { package: { constrained: false } }, addresses: ['127.0.0.1'] } });
  const psPort = await freePort();
  const psCfg = { name: 'bench-ps', coreUrl: core.url, dataDir: join(dir, 'ps'), enrollToken: token, http: { host: '127.0.0.1', port: psPort, ...(process.env.BENCH_READ_BUFFERS ? { readBuffers: Number(process.env.BENCH_READ_BUFFERS) } : {}) }, tickle: { host: '127.0.0.1', port: 0 }, reserveBytes: 0, watchStore: false };
  const child = spawn(process.execPath, [...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []), '--input-type=module', '-e', PS_CHILD, JSON.stringify(psCfg)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: PS_ENV });
  procs.push(child);
  const ps = JSON.parse(await new Promise((res, rej) => {
    let b = '';
    child.stdout.on('data', (c) => {
      b += c;
      if (b.includes('\n')) res(b.split('\n')[0]);
    });
    child.once('exit', (c) => rej(new Error(`package server exited ${c}`)));
  }));
  await api('POST', `/packages/${pkg.id}/enable`, { servers: [ps.id] });
  await waitUntil(async () => (await api('GET', `/packages/${pkg.id}`)).servers.every((s) => s.state === 'ready'), 'the bench package on our server');
  const ours = (f) => `${ps.url}/packages/${pkg.id}/${f}`;

  // ------------------------------------------------------------ nginx
  const ngPort = await freePort();
  const ngDir = join(dir, 'nginx');
  await mkdir(ngDir, { recursive: true });
  await writeFile(join(ngDir, 'nginx.conf'), `daemon off;
worker_processes 1;
pid ${ngDir}/nginx.pid;
error_log ${ngDir}/error.log warn;
${process.getuid?.() === 0 ? 'user root;' : ''}
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path ${ngDir}/body; proxy_temp_path ${ngDir}/proxy; fastcgi_temp_path ${ngDir}/fcgi; uwsgi_temp_path ${ngDir}/uwsgi; scgi_temp_path ${ngDir}/scgi;
  server { listen 127.0.0.1:${ngPort}; root ${www}; location / { } }
}
`);
  const nginx = spawn('nginx', ['-c', join(ngDir, 'nginx.conf'), '-p', ngDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(nginx);
  await waitUntil(async () => (await fetch(`http://127.0.0.1:${ngPort}/small.bin`).then((r) => r.status === 200, () => false)), 'nginx up', 10_000);
  const theirs = (f) => `http://127.0.0.1:${ngPort}/${f}`;
  // Same bytes from both.
  for (const f of ['small.bin']) {
    const a = Buffer.from(await (await fetch(ours(f))).arrayBuffer());
    const b = Buffer.from(await (await fetch(theirs(f))).arrayBuffer());
    if (sha(a) !== sha(b)) throw new Error('ours and nginx serve different bytes');
  }

  // ------------------------------------------------------------ (a) one big download, (b) 200 × medium, (c) small with wrk
  // Best of n runs each, ours and nginx alternating, so a stretch of load from elsewhere
  // on the shared machine lands on both rather than on one side's every run.
  const bestOfPairs = async (fnOurs, fnNginx, n = 3) => {
    let o;
    let g;
    for (let i = 0; i < n; i++) {
      const r = await fnOurs();
      if (!o || r.mbps > o.mbps) o = r;
      const q = await fnNginx();
      if (!g || q.mbps > g.mbps) g = q;
    }
    return [o, g];
  };
  const none = { mbps: NaN, rps: NaN };
  const mem = async () => {
    const st = await readFile(`/proc/${child.pid}/status`, 'utf8');
    return `rss ${(Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0) / 1024).toFixed(0)} MiB, peak ${(Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0) / 1024).toFixed(0)} MiB`;
  };
  log('package server after staging:', await mem());
  log('(a) one', BIG, 'byte download, curl');
  const [aOurs, aNginx] = ONLY.includes('a') ? await bestOfPairs(() => curlOne(ours('big.bin')), () => curlOne(theirs('big.bin'))) : [none, none];
  log('(a)', aOurs.mbps.toFixed(0), 'MiB/s ours,', aNginx.mbps.toFixed(0), 'MiB/s nginx;', await mem(), '; load', load());
  log('(b)', CONCURRENT, 'concurrent', MEDIUM, 'byte downloads, node client');
  const [bOurs, bNginx] = ONLY.includes('b') ? await bestOfPairs(() => nodeClient(ours('medium.bin'), CONCURRENT, 1), () => nodeClient(theirs('medium.bin'), CONCURRENT, 1)) : [none, none];
  log('(b)', bOurs.mbps.toFixed(0), 'MiB/s ours,', bNginx.mbps.toFixed(0), 'MiB/s nginx;', await mem(), '; load', load());
  log('(c) 64 KiB at', CONCURRENT, 'connections, wrk');
  const cOurs = ONLY.includes('c') ? await wrk(ours('small.bin')) : none;
  const cNginx = ONLY.includes('c') ? await wrk(theirs('small.bin')) : none;
  log('(c)', cOurs.rps.toFixed(0), 'req/s ours,', cNginx.rps.toFixed(0), 'req/s nginx;', await mem(), '; load', load());
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
  const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  result.a = { ours: aOurs, nginx: aNginx, ratio: aOurs.mbps / aNginx.mbps };
  result.b = { ours: bOurs, nginx: bNginx, ratio: bOurs.mbps / bNginx.mbps };
  result.c = { ours: cOurs, nginx: cNginx, ratio: cOurs.rps / cNginx.rps };
  result.peakRssMiB = hwmKb / 1024;
  nginx.kill('SIGTERM');
  child.kill('SIGTERM');
  // Let it stop (and write its CPU profile with BENCH_PROF), at most 10 s.
  await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 10_000))]);

  // ------------------------------------------------------------ (d) enable → ready on 10 servers, minus raw transfer
  // Each package server runs in its own process (as in production), so ten stagers do
  // not share one event loop. The raw baseline is the same ten concurrent transfers from
  // the core with curl, written to files on the same disk and fsynced (a package server
  // fsyncs every file before it reports it): the difference is our own overhead (tickle,
  // assignment fetch, hashing, status reports, the core's bookkeeping). The disk and a
  // shared machine make single transfers vary by seconds, so raw and staging rounds
  // alternate (raw, ours, raw, ours, raw, after an uncounted raw round): each staging round is compared with the mean
  // of the raw rounds either side, and the median of those is the figure. Each round
  // stages a new version of the package with the same content (the core holds it once)
  // after the servers deleted the previous one, so every round downloads every byte.
  if (ONLY.includes('d')) {
  const ROUNDS = Math.max(1, Number(process.env.BENCH_D_ROUNDS ?? 3));
  log('(d) enable → ready of', STAGE, 'bytes on 10 package servers (one process each),', ROUNDS, 'rounds between raw rounds');
  const stageFile = join(dir, 'stage.bin');
  const stageSha = await writeRandom(stageFile, STAGE);
  const stageFiles = [{ path: 'stage.bin', size: STAGE, sha256: stageSha }];
  let sp = await api('POST', '/packages', { name: 'stage', version: '1', files: stageFiles });
  await upload(sp.id, 'stage.bin', stageFile);
  await rm(stageFile);
  const rawDir = join(dir, 'raw');
  await mkdir(rawDir, { recursive: true });
  // A plain Node client in its own process: GET piped to a file, fsynced; no hashing.
  const NODE_GET = `
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
const [url, out, token] = process.argv.slice(1);
const res = await new Promise((ok, ko) => http.get(url, { headers: { authorization: 'Bearer ' + token } }, ok).on('error', ko));
await pipeline(res, createWriteStream(out));
const fh = await open(out, 'r'); await fh.sync(); await fh.close();
`;
  // Dirty pages left by an earlier round slow down whichever comes next: flush before each.
  const flush = () => run('sync', []);
  const rawRound = async (fsync, client = 'curl') => {
    await flush();
    const rawUrl = `${core.url}/api/v1/packages/${sp.id}/files/stage.bin`;
    const t = performance.now();
    const cpu = process.cpuUsage();
    const childTicks = async () => { const f = (await readFile('/proc/self/stat', 'utf8')).split(') ')[1].split(' '); return (Number(f[13]) + Number(f[14])) / 100; };
    const clients0 = await childTicks();
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const out = join(rawDir, `raw-${i}.bin`);
        if (client === 'node') {
          await run(process.execPath, ['--input-type=module', '-e', NODE_GET, rawUrl, out, core.adminToken]);
          return;
        }
        await run('curl', ['-sS', '-o', out, '-H', `Authorization: Bearer ${core.adminToken}`, rawUrl]);
        if (fsync) {
          const fh = await open(out, 'r');
          await fh.sync();
          await fh.close();
        }
      }),
    );
    const secs = (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    log(`(d) raw ${client}${fsync ? ' + fsync' : ''}: ${secs.toFixed(2)} s, cpu: clients ${((await childTicks()) - clients0).toFixed(2)} s, core ${((used.user + used.system) / 1e6).toFixed(2)} s; load ${load()}`);
    await rm(rawDir, { recursive: true, force: true });
    await mkdir(rawDir, { recursive: true });
    return secs;
  };
  const stagers = [];
  const stageDirs = [];
  for (let i = 0; i < 10; i++) {
    const cfg = { name: `stage-${i}`, coreUrl: core.url, dataDir: join(dir, `stage-${i}`), enrollToken: token, http: { host: '127.0.0.1', port: 0 }, tickle: { host: '127.0.0.1', port: 0 }, reserveBytes: 0, watchStore: false };
    stageDirs.push(cfg.dataDir);
    const env = { ...PS_ENV, ...(process.env.BENCH_TRACE ? { BENCH_TRACE_FILE: join(process.env.BENCH_TRACE, `stage-${i}.log`) } : {}) };
    const prof = process.env.BENCH_PROF && i === 0 ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
    const c = spawn(process.execPath, [...prof, '--input-type=module', '-e', PS_CHILD, JSON.stringify(cfg)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env });
    procs.push(c);
    stagers.push(
      new Promise((res, rej) => {
        let b = '';
        c.stdout.on('data', (d) => {
          b += d;
          if (b.includes('\n')) res(JSON.parse(b.split('\n')[0]));
        });
        c.once('exit', (code) => rej(new Error(`stage-${i} exited ${code}`)));
      }),
    );
  }
  const stageProcs = procs.slice(-10);
  const ids = (await Promise.all(stagers)).map((x) => x.id);
  const stagerCpu = async () => {
    let ticks = 0;
    for (const c of stageProcs) {
      const f = (await readFile(`/proc/${c.pid}/stat`, 'utf8')).split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    }
    return ticks / 100;
  };
  const stagedPaths = stageDirs.flatMap((d) => [join(d, 'content', 'sha256', stageSha.slice(0, 2), stageSha), join(d, 'content', 'tmp', `${stageSha}.part`)]);
  const oursRound = async (r) => {
    await flush();
    const cpu0 = await stagerCpu();
    const coreCpu0 = process.cpuUsage();
    const enabledAt = Date.now();
    await api('POST', `/packages/${sp.id}/enable`, { servers: ids });
    // The core stamps readyAt when it marks a server ready: enable → ready is the last of
    // those, so this poll can be slow (it shares the core's event loop with the transfers).
    const done = await waitUntil(async () => {
      const v = await api('GET', `/packages/${sp.id}`);
      return v.servers.length === 10 && v.servers.every((x) => x.state === 'ready') && v;
    }, '10 servers ready', 600_000, 250);
    const readyAt = done.servers.map((x) => Date.parse(x.readyAt) - enabledAt);
    const secs = Math.max(...readyAt) / 1000;
    const coreCpu = process.cpuUsage(coreCpu0);
    log(`(d) ours, round ${r + 1}: ${secs.toFixed(2)} s; each server ready at ${readyAt.map((x) => (x / 1000).toFixed(2)).join(' ')} s; cpu: package servers ${((await stagerCpu()) - cpu0).toFixed(2)} s, core ${((coreCpu.user + coreCpu.system) / 1e6).toFixed(2)} s; load ${load()}`);
    // The next round: a new version with the same content, once every server deleted this one.
    const next = await api('POST', '/packages', { name: 'stage', version: String(r + 2), files: stageFiles });
    await api('DELETE', `/packages/${sp.id}`);
    sp = next;
    const { access } = await import('node:fs/promises');
    await waitUntil(async () => (await Promise.all(stagedPaths.map((x) => access(x).then(() => false, () => true)))).every(Boolean), 'the servers deleted the staged package', 60_000);
    return secs;
  };
  const extra = process.env.BENCH_D_EXTRA === '1';
  const rawNoSyncSeconds = extra ? await rawRound(false) : NaN;
  const rawNodeSeconds = extra ? await rawRound(true, 'node') : NaN;
  // The first transfers of a run are slower (fresh memory for the page cache): a raw round
  // first, not counted, so that neither side gets them.
  log('(d) warm-up round, not counted:');
  await rawRound(true);
  const raws = [await rawRound(true)];
  const ours = [];
  for (let r = 0; r < ROUNDS; r++) {
    ours.push(await oursRound(r));
    raws.push(await rawRound(true));
  }
  const stopping = stageProcs.map((c) => new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r())));
  for (const c of stageProcs) c.kill('SIGTERM');
  await Promise.race([Promise.all(stopping), new Promise((r) => setTimeout(r, 10_000))]);
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)];
  const overheads = ours.map((o, r) => o - (raws[r] + raws[r + 1]) / 2);
  const overheadSeconds = ours.length % 2 ? median(overheads) : (median(overheads) + [...overheads].sort((x, y) => x - y)[ours.length / 2]) / 2;
  const rawSeconds = raws.reduce((x, y) => x + y, 0) / raws.length;
  const enableSeconds = ours.reduce((x, y) => x + y, 0) / ours.length;
  result.d = { enableToReadySeconds: enableSeconds, rounds: ours, rawRounds: raws, overheadsSeconds: overheads, rawTransferSeconds: rawSeconds, rawTransferNoFsyncSeconds: rawNoSyncSeconds, overheadSeconds, rawNodeSeconds, overheadVsNodeSeconds: enableSeconds - rawNodeSeconds };
  log(`(d) enable→ready ${ours.map((x) => x.toFixed(2)).join(', ')} s; raw curl -o + fsync ${raws.map((x) => x.toFixed(2)).join(', ')} s; overhead per round ${overheads.map((x) => x.toFixed(2)).join(', ')} s; load ${load()}`);
  } else result.d = { overheadSeconds: NaN };

  const summary = `bench:packages a=${result.a.ratio.toFixed(2)} b=${result.b.ratio.toFixed(2)} c=${result.c.ratio.toFixed(2)} rss=${result.peakRssMiB.toFixed(0)}MiB overhead=${result.d.overheadSeconds.toFixed(2)}s (targets a,b>=0.9 c>=0.5 rss<300MiB overhead<2s) load ${result.loadAverageAtStart[0].toFixed(2)}→${loadavg()[0].toFixed(2)}`;
  result.loadAverageAtEnd = loadavg();
  console.log(JSON.stringify({ ours_a_MiBps: aOurs.mbps, nginx_a_MiBps: aNginx.mbps, ours_b_MiBps: bOurs.mbps, nginx_b_MiBps: bNginx.mbps, ours_c_rps: cOurs.rps, nginx_c_rps: cNginx.rps, ...result.d }));
  console.log(summary);
  await mkdir(join(root, 'bench-results'), { recursive: true });
  await writeFile(join(root, 'bench-results', 'packages.json'), JSON.stringify(result, null, 2));
} finally {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  await core?.stop().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
