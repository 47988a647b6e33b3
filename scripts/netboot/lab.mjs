// A small lab network in Linux network namespaces, for the netboot end-to-end test and
// benchmark. Everything stays inside the namespaces it creates: a "pxe" host with a
// bridge (192.168.50.2/24, the Outpost netboot server) and a tap for a VM, and a "corp"
// host (192.168.50.1/24) joined to the bridge by a veth, where the site's DHCP server
// (dnsmasq) runs. Needs root. Every command is bounded (10 s).
import { execFileSync } from 'node:child_process';

const run = (args, opts = {}) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000, ...opts }).toString();

/**
 * Creates the namespaces; returns names and a `destroy()` that removes them (and with
 * them every interface inside). `prefix` keeps parallel runs apart.
 */
export function createLab(prefix = `nb${process.pid % 100000}`, { tap = true } = {}) {
  const pxe = `${prefix}-pxe`;
  const corp = `${prefix}-corp`;
  const lab = {
    pxe,
    corp,
    serverAddress: '192.168.50.2',
    corpAddress: '192.168.50.1',
    tap: tap ? 'tap0' : undefined,
    /** Runs a command inside a namespace (argv). */
    execArgs: (ns, argv) => ['ip', 'netns', 'exec', ns, ...argv],
    destroy() {
      for (const ns of [pxe, corp]) {
        try {
          run(['netns', 'del', ns]);
        } catch {
          // already gone
        }
      }
    },
  };
  lab.destroy();
  try {
    run(['netns', 'add', pxe]);
    run(['netns', 'add', corp]);
    run(['-n', pxe, 'link', 'set', 'lo', 'up']);
    run(['-n', corp, 'link', 'set', 'lo', 'up']);
    run(['-n', pxe, 'link', 'add', 'br0', 'type', 'bridge']);
    // Forward at once (no STP delay): the VM's first DHCP must not be lost.
    run(['-n', pxe, 'link', 'set', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    run(['-n', pxe, 'addr', 'add', '192.168.50.2/24', 'dev', 'br0']);
    run(['-n', pxe, 'link', 'set', 'br0', 'up']);
    run(['link', 'add', 'vc', 'netns', corp, 'type', 'veth', 'peer', 'name', 'vb', 'netns', pxe]);
    run(['-n', pxe, 'link', 'set', 'vb', 'master', 'br0', 'up']);
    run(['-n', corp, 'addr', 'add', '192.168.50.1/24', 'dev', 'vc']);
    run(['-n', corp, 'link', 'set', 'vc', 'up']);
    // Limited broadcast (255.255.255.255) needs a route; keep it on the lab's link.
    run(['-n', pxe, 'route', 'add', '255.255.255.255/32', 'dev', 'br0']);
    run(['-n', corp, 'route', 'add', '255.255.255.255/32', 'dev', 'vc']);
    if (tap) {
      run(['-n', pxe, 'tuntap', 'add', 'tap0', 'mode', 'tap']);
      run(['-n', pxe, 'link', 'set', 'tap0', 'master', 'br0', 'up']);
    }
  } catch (err) {
    lab.destroy();
    throw err;
  }
  return lab;
}

/** Adds `n` extra client namespaces' worth of veths? No: clients for the benchmark share one namespace, see bench. */
export function addClientNamespace(lab, name, address) {
  run(['netns', 'add', name]);
  run(['-n', name, 'link', 'set', 'lo', 'up']);
  run(['link', 'add', 'vx', 'netns', name, 'type', 'veth', 'peer', 'name', `v${name.slice(-6)}`, 'netns', lab.pxe]);
  run(['-n', lab.pxe, 'link', 'set', `v${name.slice(-6)}`, 'master', 'br0', 'up']);
  run(['-n', name, 'addr', 'add', address, 'dev', 'vx']);
  run(['-n', name, 'link', 'set', 'vx', 'up']);
  run(['-n', name, 'route', 'add', '255.255.255.255/32', 'dev', 'vx']);
  return () => {
    try {
      run(['netns', 'del', name]);
    } catch {
      // gone
    }
  };
}
