// The netboot service's /metrics on its HTTP boot listener: a PXE DISCOVER on loopback,
// a TFTP fetch and a boot script move the DHCP, TFTP, session and HTTP counters.
import { parseMetrics, waitFor } from '@outpost/testing';
import { tftpGet } from '@outpost/tftp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNetboot, type Netboot } from '../../src/index.js';
import { clientPacket, FakeCore, loopbackNetbootConfig, netbootFixture, replyFile, type NetbootFixture } from '../helpers.js';

let fx: NetbootFixture;
let nb: Netboot | undefined;
beforeEach(async () => {
  fx = await netbootFixture('outpost-netboot-metrics-', 100_000);
});
afterEach(async () => {
  await nb?.stop();
  nb = undefined;
  await fx.close();
});

describe('netboot metrics', () => {
  it('serves /metrics, and DHCP offers, TFTP transfers and HTTP requests move the counters', async () => {
    const { probe } = fx;
    nb = createNetboot(loopbackNetbootConfig(fx.dir, probe.port), { backend: new FakeCore() });
    await nb.start();
    const scrape = async (): Promise<Map<string, number>> => {
      const res = await fetch(`${nb!.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      return parseMetrics(await res.text());
    };
    const before = await scrape();
    expect(before.get('outpost_netboot_dhcp_offers_total')).toBe(0);
    expect(before.has('nodejs_eventloop_lag_seconds')).toBe(true);

    await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00000:UNDI:002001', arch: 0 }), nb.addresses().dhcp!);
    await probe.next(5_000);
    await probe.send(clientPacket({ vendor: 'MSFT 5.0' }), nb.addresses().dhcp!);
    const got = await tftpGet({ host: '127.0.0.1', port: nb.addresses().tftp!, filename: 'undionly.kpxe' });
    expect(got.data?.length).toBe(100_000);
    expect((await fetch(`${nb.url}/boot/52-54-00-12-34-56.ipxe`)).status).toBe(200);
    // iPXE's DHCP answer mints a boot token; its script request uses it.
    await probe.send(clientPacket({ vendor: 'PXEClient:Arch:00000', arch: 0, ipxe: true, mac: '52:54:00:12:34:57' }), nb.addresses().dhcp!);
    expect((await fetch(replyFile((await probe.next(5_000)).data))).status).toBe(200);

    const after = await waitFor(
      async () => {
        const m = await scrape();
        return (m.get('outpost_netboot_tftp_transfers_total{outcome="completed"}') ?? 0) >= 1 && m;
      },
      { timeoutMs: 10_000, what: 'the TFTP transfer to be counted' },
    );
    expect(after.get('outpost_netboot_dhcp_offers_total')).toBe(2);
    expect(after.get('outpost_netboot_boot_tokens_total{outcome="minted"}')).toBe(1);
    expect(after.get('outpost_netboot_boot_tokens_total{outcome="used"}')).toBe(1);
    expect(after.get('outpost_netboot_boot_script_untokened_total{reason="absent"}')).toBe(1);
    expect(after.get('outpost_netboot_boot_script_untokened_total{reason="invalid"}')).toBe(0);
    expect(after.get('outpost_netboot_dhcp_ignored_total{reason="not-pxe"}')).toBe(1);
    expect(after.get('outpost_netboot_tftp_requests_total{kind="read"}')).toBe(1);
    expect(after.get('outpost_netboot_tftp_bytes_total{direction="sent"}')).toBe(100_000);
    expect(after.get('outpost_netboot_http_requests_total{method="GET",route="/boot/:mac.ipxe",status="200"}')).toBe(2);
    expect(after.get('outpost_netboot_level_db_bytes')).toBeGreaterThan(0);
  });
});
