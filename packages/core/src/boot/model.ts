/** A computer the boot service knows: discovered (booted, unknown), predefined (an admin registered it) or managed (an agent runs on it). */
export interface ComputerRecord {
  id: string;
  /** Lower-case colon MACs. */
  macs: string[];
  uuid?: string | undefined;
  name?: string | undefined;
  kind: 'discovered' | 'predefined' | 'managed';
  /** Boot image it boots (predefined), by name. */
  image?: string | undefined;
  /** Job to run once it is up. */
  job?: string | undefined;
  /**
   * The agent on it (managed computers). Bound by an admin, or by the first agent to enroll
   * from one of its MACs after a boot a netboot server observed; never from what an agent
   * reports about itself alone.
   */
  agentId?: string | undefined;
  /**
   * When a netboot server last served this computer its script on a boot it answered
   * itself (a one-use boot token in the script URL: `decide` with `consume`). The first
   * agent that enrolls from one of its MACs within `jobWait` is bound to it; the binding
   * clears this, so a boot binds at most one agent.
   */
  observedBootAt?: number | undefined;
  /** One-shot "reboot to automation": cleared when it has fetched its script once. */
  once?: { image: string; job?: string | undefined; requestedAt: number; by: string } | undefined;
  /**
   * The job of the boot it made last (predefined job or one-shot job), waiting for an
   * agent to enroll from one of its MACs; cleared when the run starts (or `jobWait` passed).
   */
  pendingJob?: { job: string; image?: string | undefined; boot: string; at: number } | undefined;
  /** What became of the last pending job: the run started on which agent, or why not. */
  lastJob?: { job: string; at: number; run?: string | undefined; agent?: string | undefined; error?: string | undefined } | undefined;
  createdAt: number;
  updatedAt: number;
  lastBootAt?: number | undefined;
  boots: number;
}

/** A boot image: a package holding a kernel/initrd (or an iPXE script) and how to boot it. */
export interface BootImageRecord {
  name: string;
  /** Package reference: name (newest), name@version or id. */
  package: string;
  /** Path in the package of an iPXE script to chain (takes precedence over kernel/initrd). */
  script?: string | undefined;
  kernel?: string | undefined;
  initrd?: string[] | undefined;
  cmdline?: string | undefined;
  description?: string | undefined;
  createdAt: number;
}

export type BootEventType =
  | 'discover'
  | 'offer'
  | 'request'
  | 'ack'
  | 'pxe-request'
  | 'pxe-ack'
  | 'tftp-start'
  | 'tftp-done'
  | 'tftp-failed'
  | 'http'
  | 'script'
  | 'handoff'
  | 'other-proxy'
  | 'queued';

/** One step of a boot as a netboot server saw it. */
export interface BootEvent {
  at: number;
  type: BootEventType;
  server?: string | undefined;
  detail?: Record<string, string | number | boolean> | undefined;
}

/** One boot of one MAC: its timeline. */
export interface BootRecord {
  id: string;
  mac: string;
  computerId?: string | undefined;
  /** What the computer was when it booted. */
  kind: 'unknown' | 'discovered' | 'predefined' | 'managed';
  image?: string | undefined;
  job?: string | undefined;
  arch?: number | undefined;
  uuid?: string | undefined;
  ip?: string | undefined;
  startedAt: number;
  lastAt: number;
  /** True once the script was handed over (the machine left the boot service). */
  handedOff: boolean;
  events: BootEvent[];
  droppedEvents: number;
  /** The run of `job` started when the computer's agent enrolled after this boot. */
  run?: string | undefined;
  /** Boot ids the netboot servers gave this boot: their DHCP, TFTP and HTTP log lines carry them. */
  netbootIds?: string[] | undefined;
}

/** What a netboot server serves one machine. */
export interface BootDecision {
  mac: string;
  computerId?: string | undefined;
  kind: BootRecord['kind'];
  image?: string | undefined;
  job?: string | undefined;
  /** iPXE script; `${outpost-base}` is the netboot server's HTTP base URL. */
  script: string;
  /** How long it may be reused; 0 for one-shot decisions. */
  ttlMs: number;
}
