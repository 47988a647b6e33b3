import { hostname } from 'node:os';
import { coreUrls, durationSchema, portSchema, z } from '@outpost/common';
import { caFingerprintSchema } from './ca-pin.js';
import { agentTasksConfigSchema } from './tasks/task-config.js';

const duration = durationSchema;

const positiveDuration = duration.refine((ms) => ms > 0, { message: 'must be greater than 0' });

/** The agent's config (`agent:` section of an Outpost config file). */
export const agentConfigSchema = z
  .strictObject({
    /**
     * The core's base URL, e.g. `http://core.example:8080`, or a list of them (several
     * active cores of one estate: calls fail over in order, see src/core-client.ts);
     * parsed to a list.
     */
    coreUrl: coreUrls,
    /** Where the identity (id and credential) is kept. @default './var/agent' */
    dataDir: z.string().min(1).default('./var/agent'),
    /** The name the agent enrolls with. @default os.hostname() */
    name: z
      .string()
      .min(1)
      .max(255)
      .default(() => hostname()),
    /** An enrollment token, used when the data dir holds no identity. */
    enrollToken: z.string().min(1).optional(),
    /** A file holding the enrollment token (first line), instead of `enrollToken`. */
    enrollTokenFile: z.string().min(1).optional(),
    /**
     * The sha256 fingerprint of the core's CA certificate (hex, colons and a `sha256:` prefix
     * allowed, as `openssl x509 -fingerprint -sha256` prints it). When set, the agent enrolls
     * only with a core whose CA has it: the CA an https core is trusted by before enrollment
     * and the one the enrollment answer carries (`AGENT_CA_MISMATCH` otherwise). Parsed to
     * lowercase hex.
     */
    caFingerprint: caFingerprintSchema.optional(),
    /**
     * The file holding this computer's machine id, recorded in the identity at enrollment: an
     * identity whose machine id is not this computer's was copied from another (a cloned
     * image) and is moved aside to enroll anew. Missing or empty: no check (logged).
     * @default '/etc/machine-id', then '/var/lib/dbus/machine-id'
     */
    machineIdFile: z.string().min(1).optional(),
    /** OS description sent at enrollment. @default `${os.type()} ${os.release()}` */
    os: z.string().min(1).max(255).optional(),
    heartbeat: z
      .strictObject({
        /** `udp`: UDP only; `http`: HTTP only; `auto`: UDP, HTTP when UDP gets no ack. @default 'auto' */
        via: z.enum(['auto', 'udp', 'http']).default('auto'),
        /** How long to wait for a UDP ack. @default '3s' */
        udpAckTimeout: positiveDuration.default(3_000),
        /** UDP attempts in a row without ack before falling back to HTTP. @default 2 */
        udpAttempts: z.number().int().min(1).max(10).default(2),
        /** In HTTP fallback, try UDP again every Nth heartbeat. @default 10 */
        udpRetryEvery: z.number().int().min(1).max(10_000).default(10),
        /** Heartbeat interval. @default the core's (`heartbeatIntervalMs`) */
        interval: positiveDuration.optional(),
      })
      .prefault({}),
    /** Config poll interval. @default the core's (`configPollIntervalMs`) */
    configPollInterval: positiveDuration.optional(),
    /** UDP port of the core's datagram listener. @default the one enrollment returned */
    datagramPort: z.number().int().min(1).max(65535).optional(),
    /** Host of the core's datagram listener. @default the host of the core URL the agent talks to now */
    datagramHost: z.string().min(1).optional(),
    retry: z
      .strictObject({
        /** First retry delay after a failed contact. @default '1s' */
        base: positiveDuration.default(1_000),
        /** Largest retry delay (never more than the interval). @default '30s' */
        cap: positiveDuration.default(30_000),
      })
      .prefault({}),
    /** Per-request HTTP timeout. @default '10s' */
    httpTimeout: positiveDuration.default(10_000),
    /**
     * Internet gateways (`https://host:port`), tried in order when the core cannot be
     * reached directly (see src/transport). @default []
     */
    gateways: z.array(z.url({ protocol: /^https$/, message: 'expected an https URL' })).max(16).default([]),
    /** The core's CA certificate (PEM file), trusted before enrollment gives it: a gateway's or an https core's TLS. */
    caFile: z.string().min(1).optional(),
    /** Re-check direct vs gateway this often (also on network change and after a failed contact). @default '5m' */
    routeRecheck: positiveDuration.default(300_000),
    /** Running tasks from the task server (see src/tasks). */
    tasks: agentTasksConfigSchema,
    /**
     * Prometheus metrics on a plain HTTP listener of their own (`GET /metrics`, src/metrics.ts).
     * Off by default: an agent on a managed computer opens no port unless told to.
     */
    metrics: z
      .strictObject({
        /** @default false */
        enabled: z.boolean().default(false),
        /** @default '127.0.0.1' */
        host: z.string().min(1).default('127.0.0.1'),
        /** 0: any free port. @default 9465 */
        port: portSchema.default(9465),
      })
      .prefault({}),
  })
  .refine((c) => !(c.enrollToken && c.enrollTokenFile), {
    message: 'set enrollToken or enrollTokenFile, not both',
    path: ['enrollTokenFile'],
  });

export type AgentConfigInput = z.input<typeof agentConfigSchema>;
export type AgentConfig = z.output<typeof agentConfigSchema>;
