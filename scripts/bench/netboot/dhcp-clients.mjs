// The PXE firmware's DHCP side for bench:netboot, for all simulated clients at once, in
// the client namespace: each client sends a DHCPDISCOVER (60 = PXEClient:Arch:00000,
// 93 = 0, 94, 97, 55, 57) by broadcast from 0.0.0.0:68, takes the proxy offer (xid and
// chaddr match, 60 = PXEClient), then sends a DHCPREQUEST to the boot server's port 4011
// from its own address (ciaddr set; option 43 sub-option 71 = the first menu item when
// the offer carried a PXE menu, as dnsmasq's pxe-service sends) and takes the boot file
// from the 4011 ACK. Kept apart from the TFTP clients so the offer latency is not the
// TFTP clients' event-loop lag.
//
// Timeouts as PXE 2.1 firmware: DISCOVER resent after 4, 8, 16 s (then the client has
// failed); the 4011 REQUEST resent after 1, 2, 3, 4 s.
//
// argv[2] JSON: { ips: [...], rampMs, macBase }. stdin: JSON lines {restart: i}, {quit: true}.
// stdout: JSON lines {start: epochMs}, {offer: i, ms}, {boot: i, ip, server, file, at},
// {fail: i, stage: 'offer'|'pxe'}.
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { decodeDhcp, encodeClientArchs, encodeDhcp, fieldText, MessageType, Op, Opt, readIp, readText, text } from '@outpost/netboot';

const args = JSON.parse(process.argv[2]);
const ips = args.ips;
const N = ips.length;
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const DISCOVER_TIMEOUTS = [4000, 8000, 16000];
const PXE_TIMEOUTS = [1000, 2000, 3000, 4000];
const VENDOR = 'PXEClient:Arch:00000:UNDI:002001';
const PARAMS = Buffer.from([1, 3, 43, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135]);

const macOf = (i) => {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(0x0200, 0);
  b.writeUInt32BE((args.macBase ?? 0x42000000) + i, 2);
  return b;
};
const macText = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const guidOf = (i) => {
  const g = Buffer.alloc(17);
  g.writeUInt32BE(0x6f757470, 1); // "outp"
  g.writeUInt32BE(i + 1, 13);
  return g;
};

/** Client state by index; xid → index. */
const clients = Array.from({ length: N }, (_, i) => ({ i, mac: macOf(i), xid: 0, stage: 'idle', tries: 0, sentAt: 0, timer: undefined, sock: undefined, offer: undefined }));
const byXid = new Map();
let nextXid = (Math.floor(Math.random() * 0x7fff) << 16) >>> 0;

function packet(c, type, o = {}) {
  const chaddr = Buffer.alloc(16);
  c.mac.copy(chaddr);
  const opts = [
    [Opt.MAX_MESSAGE_SIZE, Buffer.from([0x05, 0xc0])],
    [Opt.PARAM_LIST, PARAMS],
    [Opt.CLIENT_ARCH, encodeClientArchs([0])],
    [Opt.CLIENT_NDI, Buffer.from([1, 2, 1])],
    [Opt.CLIENT_GUID, guidOf(c.i)],
    [Opt.VENDOR_CLASS, text(VENDOR)],
    ...(o.extra ?? []),
  ];
  return encodeDhcp(
    { op: Op.REQUEST, htype: 1, hlen: 6, hops: 0, xid: c.xid, secs: 0, flags: o.ciaddr ? 0 : 0x8000, ciaddr: o.ciaddr ?? '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: Buffer.alloc(64), file: Buffer.alloc(128) },
    type,
    opts,
    { maxMessageSize: 1472 },
  ).packet;
}

/** PXE option-43 sub-options (TLV up to 255). */
function pxeSubs(v) {
  const m = new Map();
  if (!v) return m;
  for (let i = 0, n = 0; i + 1 < v.length && n < 64; n++) {
    const code = v[i];
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    const len = v[i + 1];
    m.set(code, v.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return m;
}

const bcast = createSocket({ type: 'udp4', reuseAddr: true });
await new Promise((resolve, reject) => {
  bcast.once('error', reject);
  bcast.bind({ port: 68, address: '0.0.0.0' }, resolve);
});
bcast.setBroadcast(true);
bcast.setRecvBufferSize(8 * 1024 * 1024);
bcast.setSendBufferSize(4 * 1024 * 1024);

function sendDiscover(c) {
  c.stage = 'discover';
  c.sentAt = performance.now();
  bcast.send(packet(c, MessageType.DISCOVER), 67, '255.255.255.255');
  const wait = DISCOVER_TIMEOUTS[c.tries];
  clearTimeout(c.timer);
  c.timer = setTimeout(() => {
    if (c.stage !== 'discover') return;
    c.tries++;
    if (c.tries >= DISCOVER_TIMEOUTS.length) {
      c.stage = 'failed';
      out({ fail: c.i, stage: 'offer' });
      return;
    }
    sendDiscover(c);
  }, wait);
}

function start(c) {
  byXid.delete(c.xid);
  c.xid = nextXid++ >>> 0;
  byXid.set(c.xid, c);
  c.tries = 0;
  c.firstSentAt = performance.now();
  c.offer = undefined;
  sendDiscover(c);
}

bcast.on('message', (msg) => {
  const r = decodeDhcp(msg);
  if (!r.ok || r.message.op !== Op.REPLY || r.message.type !== MessageType.OFFER) return;
  const m = r.message;
  const c = byXid.get(m.xid);
  if (!c || c.stage !== 'discover' || !m.chaddr.subarray(0, 6).equals(c.mac)) return;
  if (!readText(m.options.get(Opt.VENDOR_CLASS))?.startsWith('PXEClient')) return; // not a PXE offer
  clearTimeout(c.timer);
  out({ offer: c.i, ms: +(performance.now() - c.firstSentAt).toFixed(3), tries: c.tries + 1 });
  c.offer = m;
  c.tries = 0;
  pxeRequest(c);
});

async function pxeRequest(c) {
  const m = c.offer;
  const server = m.siaddr !== '0.0.0.0' ? m.siaddr : readIp(m.options.get(Opt.SERVER_ID));
  const subs = pxeSubs(m.options.get(Opt.VENDOR_SPECIFIC));
  const extra = [];
  const menu = subs.get(9);
  if (menu && menu.length >= 3) {
    // Boot item = the first menu entry's type, layer 0.
    const item = Buffer.from([menu[0], menu[1], 0, 0]);
    extra.push([Opt.VENDOR_SPECIFIC, Buffer.concat([Buffer.from([71, 4]), item, Buffer.from([255])])]);
  }
  c.stage = 'pxe';
  if (!c.sock) {
    const s = createSocket('udp4');
    c.sock = s;
    await new Promise((resolve, reject) => {
      s.once('error', reject);
      s.bind({ port: 0, address: ips[c.i] }, resolve);
    });
    s.on('message', (msg2) => {
      const a = decodeDhcp(msg2);
      if (!a.ok || a.message.op !== Op.REPLY || a.message.type !== MessageType.ACK || a.message.xid !== c.xid || c.stage !== 'pxe') return;
      clearTimeout(c.timer);
      const ack = a.message;
      const file = fieldText(ack.file) || readText(ack.options.get(Opt.BOOTFILE)) || '';
      const tftpServer = ack.siaddr !== '0.0.0.0' ? ack.siaddr : (readText(ack.options.get(Opt.TFTP_SERVER)) ?? server);
      c.stage = 'booting';
      s.close();
      c.sock = undefined;
      out({ boot: c.i, ip: ips[c.i], server: tftpServer, file, at: Date.now(), mac: macText(c.mac) });
    });
  }
  const pkt = packet(c, MessageType.REQUEST, { ciaddr: ips[c.i], extra });
  const send = () => {
    c.sock?.send(pkt, 4011, server);
    clearTimeout(c.timer);
    c.timer = setTimeout(() => {
      if (c.stage !== 'pxe') return;
      c.tries++;
      if (c.tries >= PXE_TIMEOUTS.length) {
        c.stage = 'failed';
        c.sock?.close();
        c.sock = undefined;
        out({ fail: c.i, stage: 'pxe' });
        return;
      }
      send();
    }, PXE_TIMEOUTS[c.tries]);
  };
  send();
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line);
  if (cmd.restart !== undefined) start(clients[cmd.restart]);
  if (cmd.quit) process.exit(0);
});
process.stdin.on('end', () => process.exit(0));

out({ start: Date.now() });
const ramp = Math.max(0, args.rampMs ?? 0);
if (ramp === 0) for (const c of clients) start(c);
else {
  // Spread the starts evenly over rampMs, in 1 ms ticks.
  const t0 = performance.now();
  let next = 0;
  const tick = () => {
    const due = Math.min(N, Math.ceil(((performance.now() - t0) / ramp) * N));
    while (next < due) start(clients[next++]);
    if (next < N) setTimeout(tick, 1);
  };
  tick();
}
