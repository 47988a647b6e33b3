import { coreUrls, duration, portSchema, z } from '@outpost/common';
import { defaultWorkers } from '@outpost/tftp';
import { NetbootError, NetbootErrors } from './errors.js';

const port = portSchema;
const ipv4 = z.string().regex(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/, 'an IPv4 address');
const mac = z
  .string()
  .regex(/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/, 'a MAC address like 52:54:00:12:34:56')
  .transform((m) => m.toLowerCase().replace(/-/g, ':'));

/** How a PXE (not iPXE) client is told to boot: option 43 discovery control, or the 4011 path. */
export const option43Mode = z.enum(['use-bootfile', 'boot-server']);
export type Option43Mode = z.output<typeof option43Mode>;

/**
 * Default boot files per client architecture (option 93, IANA registry). Archs with an
 * HTTP value (UEFI HTTP boot: 15, 16, 18, 19, 20) are given as a URL under the netboot
 * HTTP server's `/loaders/`; the others are TFTP paths under `loaders.dir`.
 */
export const DEFAULT_LOADERS: Record<string, string> = {
  '0': 'undionly.kpxe',
  '6': 'ipxe-ia32.efi',
  '7': 'snponly.efi',
  '9': 'snponly.efi',
  '10': 'ipxe-arm32.efi',
  '11': 'ipxe-arm64.efi',
  '16': 'snponly.efi',
  '19': 'ipxe-arm64.efi',
};
/** Architectures whose firmware boots over HTTP (UEFI HTTP boot, `HTTPClient`). */
export const HTTP_ARCHS: ReadonlySet<number> = new Set([15, 16, 18, 19, 20]);

const proxySchema = z
  .strictObject({
    /** Answer PXE clients as proxyDHCP on `port` and as the PXE boot server on `pxePort`. @default true */
    enabled: z.boolean().default(true),
    /** DHCP server port. @default 67 */
    port: port.default(67),
    /** PXE boot server port (BINL). @default 4011 */
    pxePort: port.default(4011),
    /** Port broadcast replies go to. @default 68 */
    clientPort: port.default(68),
    /** Where broadcast replies go. @default '255.255.255.255' */
    broadcastAddress: ipv4.default('255.255.255.255'),
    /** Port replies to a relay (giaddr) go to. @default 67 */
    relayPort: port.default(67),
    /**
     * When 67/4011 cannot be bound (no privileges, another DHCP server there): `true`
     * logs a warning and runs TFTP/HTTP without proxyDHCP; `false` fails the start. @default false
     */
    optional: z.boolean().default(false),
    /** Option 43 for PXE clients: `use-bootfile` ({6: 8}) or `boot-server` (no 43: the 4011 path). @default 'use-bootfile' */
    option43: option43Mode.default('use-bootfile'),
    /** Per vendor-class prefix (`PXEClient:Arch:00007`): option-43 mode. */
    option43ByVendor: z.record(z.string().min(1), option43Mode).default({}),
    /** Per MAC: option-43 mode (firmware that needs the 4011 path). */
    option43ByMac: z.record(z.string(), option43Mode).default({}),
    /** Listen on UDP 68 for other servers' PXE offers and warn (another proxyDHCP on the segment). @default true */
    watchOtherServers: z.boolean().default(true),
  })
  .prefault({});

const reservation = z.strictObject({ mac, ip: ipv4, hostname: z.string().optional() });

const dhcpSchema = z
  .strictObject({
    /** Full DHCP mode (an isolated provisioning network): lease addresses to every client. @default false */
    enabled: z.boolean().default(false),
    rangeStart: ipv4.optional(),
    rangeEnd: ipv4.optional(),
    subnetMask: ipv4.default('255.255.255.0'),
    router: ipv4.optional(),
    dns: z.array(ipv4).default([]),
    domainName: z.string().optional(),
    /** @default '1h' */
    leaseTime: duration('1h'),
    /** How long an offered address is held for the client's REQUEST. @default '30s' */
    offerHold: duration('30s'),
    /** How long a declined address is left alone. @default '10m' */
    declineHold: duration('10m'),
    reservations: z.array(reservation).default([]),
  })
  .prefault({})
  .superRefine((d, ctx) => {
    if (d.enabled && (!d.rangeStart || !d.rangeEnd)) ctx.addIssue({ code: 'custom', path: ['rangeStart'], message: 'full DHCP mode needs rangeStart and rangeEnd' });
  });

/** The `netboot:` section. Strict: unknown keys are errors. */
export const netbootConfigSchema = z.strictObject({
  /** Its name in the core's registry. @default 'netboot' */
  name: z.string().min(1).default('netboot'),
  /** Level db (leases), identity, image file cache. @default './var/netboot' */
  dataDir: z.string().min(1).default('./var/netboot'),
  /** The core's base URL (no `/api/v1`), or a list of them (several cores of one estate, failed over in order); parsed to a list. */
  coreUrl: coreUrls,
  /** A package server next to us: image files are fetched from it first, then from the core. */
  packageServerUrl: z.url().optional(),
  enrollToken: z.string().optional(),
  enrollTokenFile: z.string().optional(),
  /** Address the DHCP sockets bind. @default '0.0.0.0' */
  address: ipv4.default('0.0.0.0'),
  /**
   * Our address as clients see it (option 54, siaddr, URLs). Node cannot tell the
   * receiving interface, so on a multi-homed host set it. @default the bound address, else the first non-internal IPv4
   */
  serverAddress: ipv4.optional(),
  proxyDhcp: proxySchema,
  dhcp: dhcpSchema,
  tftp: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Where TFTP binds: loopback unless the config opens it (`0.0.0.0` for the client network). @default '127.0.0.1' */
      address: z.string().default('127.0.0.1'),
      /** @default 69 */
      port: port.default(69),
      maxBlksize: z.number().int().min(8).max(65464).default(1468),
      maxWindowsize: z.number().int().min(1).max(64).default(64),
      /**
       * Transfer worker threads (@outpost/tftp `workers`): file reads run in them, so the
       * thread that answers DHCP never sends TFTP data. @default 2 on 2+ cores, else 0 (`defaultWorkers()`)
       */
      workers: z
        .number()
        .int()
        .min(0)
        .max(64)
        .default(() => defaultWorkers()),
      /** Busy-poll budget for ACKs in µs (@outpost/tftp `busyPollUs`); 0 = off. @default 200 */
      busyPollUs: z.number().int().min(0).max(10_000).default(200),
    })
    .prefault({}),
  http: z
    .strictObject({
      /** Where HTTP boot binds: loopback unless the config opens it (`0.0.0.0` for the client network). @default '127.0.0.1' */
      host: z.string().default('127.0.0.1'),
      /** @default 8082 */
      port: port.default(8082),
      /** Base URL clients are given. @default http://serverAddress:port */
      publicUrl: z.url().optional(),
    })
    .prefault({}),
  loaders: z
    .strictObject({
      /** Directory with iPXE binaries (Debian `ipxe`: /usr/lib/ipxe). @default '/usr/lib/ipxe' */
      dir: z.string().default('/usr/lib/ipxe'),
      /** Boot file per client arch (option 93); merged over the defaults. */
      byArch: z.record(z.string().regex(/^\d+$/), z.string().min(1)).default({}),
    })
    .prefault({}),
  sessions: z
    .strictObject({
      /** Concurrent boot sessions (TFTP transfers); beyond it requests wait. @default 200 */
      max: z.number().int().min(1).max(10_000).default(200),
      /** Requests that may wait for a slot; beyond it "server busy". @default 5000 */
      queue: z.number().int().min(0).max(100_000).default(5000),
      /** Longest wait for a slot. @default '60s' */
      maxWait: duration('60s'),
      /** A boot session with no activity for this long is closed. @default '5m' */
      idleTimeout: duration('5m'),
    })
    .prefault({}),
  replies: z
    .strictObject({
      /** DHCP replies per second, all clients (flood bound). @default 2000 */
      perSecond: z.number().int().min(1).default(2000),
      /** DHCP replies per second to one MAC. @default 4 */
      perMacPerSecond: z.number().min(0.1).default(4),
      /** MACs tracked for rate limiting and sessions (oldest forgotten first). @default 20000 */
      trackedMacs: z.number().int().min(100).default(20_000),
    })
    .prefault({}),
  decisions: z
    .strictObject({
      /** How long a boot decision from the core is reused. @default '30s' */
      ttl: duration('30s'),
      /** How long a script request waits for the core before the cached (or default) decision. @default '3s' */
      timeout: duration('3s'),
      /**
       * How long the one-use boot token in a script URL handed out by a DHCP answer stays
       * valid (an iPXE client fetches its script seconds after its DHCP). @default '10m'
       */
      tokenTtl: duration('10m'),
      /**
       * Script requests without a valid boot token that may ask the core per second (a
       * non-consuming decision); beyond it they get "boot from the local disk" without
       * asking, so a flood of them cannot hold up the decisions of real boots. @default 20
       */
      untokenedPerSecond: z.number().min(0.1).default(20),
    })
    .prefault({}),
  /** Boot events sent to the core at most this often. @default '1s' */
  reportInterval: duration('1s'),
});

export type NetbootConfigInput = z.input<typeof netbootConfigSchema>;
export type NetbootConfig = z.output<typeof netbootConfigSchema>;

/** Validates once at the edge; the error lists every bad path. */
export function parseNetbootConfig(input: unknown): NetbootConfig {
  const r = netbootConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
    throw new NetbootError(NetbootErrors.CONFIG_INVALID, `invalid netboot config: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { details: { issues } });
  }
  return Object.freeze(r.data);
}
