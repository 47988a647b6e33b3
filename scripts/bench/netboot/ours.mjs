// The Outpost netboot service for bench:netboot, run inside the benchmark's server
// namespace: proxyDHCP on 67 + PXE boot server on 4011 + TFTP on 69, with an in-memory
// fake core (every machine is predefined; events are counted and dropped) so the
// benchmark measures the network boot path, not the core. Option 43 is left out of
// offers (`boot-server`), so clients take the 4011 path as they do with dnsmasq's
// pxe-service menu. Prints {"ready":...} once listening; on SIGTERM prints
// {"stats":...} and exits.
//   node ours.mjs '{"dir":"/tmp/x","serverAddress":"10.66.0.1","loaderDir":"/tmp/x/root","file":"img30.0"}'
import { join } from 'node:path';
import { createNetboot } from '@outpost/netboot';
import { silentLogger } from '@outpost/common';

const args = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
let events = 0;
const backend = {
  async decide({ mac }) {
    return { mac, kind: 'predefined', image: 'bench', script: '#!ipxe\nexit\n', ttlMs: 300_000 };
  },
  async image(name) {
    return { name, package: 'bench', packageInfo: null };
  },
  fileUrl() {
    return { url: 'http://127.0.0.1:1/none', bearer: '' };
  },
  async events(items) {
    events += items.length;
  },
};

const nb = createNetboot(
  {
    name: 'netboot-bench',
    coreUrl: 'http://127.0.0.1:1',
    dataDir: join(args.dir, 'netboot'),
    serverAddress: args.serverAddress,
    proxyDhcp: { option43: 'boot-server' },
    tftp: { port: 69 },
    http: { port: 8082 },
    loaders: { dir: args.loaderDir, byArch: { 0: args.file } },
    ...(args.config ?? {}),
  },
  { logger: silentLogger(), backend },
);
await nb.start();
out({ ready: { dhcp: nb.dhcpStatus, addresses: nb.addresses() } });

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  out({ stats: { ...nb.stats(), eventsToCore: events, tftpConfig: { workers: nb.config.tftp.workers, busyPollUs: nb.config.tftp.busyPollUs } } });
  await nb.stop().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
