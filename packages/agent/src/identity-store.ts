import { readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { OutpostError, parseCredential, writeFileAtomic, z } from '@outpost/common';
import { AgentErrors } from './errors.js';

/**
 * What an enrolled agent must keep across restarts. Stored as one small JSON file,
 * `<dataDir>/identity.json`, mode 0600, replaced atomically (write a temp file, fsync,
 * rename, fsync the directory): a crash leaves the old identity or the new one, never
 * half of one. A file rather than a level db because the record is one secret that must
 * not be readable by other users (level creates its files with the process umask), it is
 * written once per enrollment, and an operator can inspect or delete it by hand.
 */
export const identitySchema = z.strictObject({
  version: z.literal(1),
  id: z.string().min(1).max(64),
  /** `<id>.<secret>` as the core returned it. */
  credential: z.string().min(3),
  /** The core this identity belongs to. */
  coreUrl: z.string(),
  datagramPort: z.number().int().min(0).max(65535),
  heartbeatIntervalMs: z.number().int().positive(),
  configPollIntervalMs: z.number().int().positive().optional(),
  enrolledAt: z.string(),
  /** The agent's certificate from the core's CA (PEM), for gateways; with its key (PKCS#8 PEM). */
  certificate: z.string().optional(),
  key: z.string().optional(),
  /** The core's CA certificate (PEM): trusted for the core's, site servers' and gateways' TLS. */
  caCertificate: z.string().optional(),
  /** The core's id (what the signed probe must name) and its own URL (the target to ask a gateway for). */
  coreId: z.string().optional(),
  tunnelUrl: z.string().optional(),
  /** Renew the certificate from this time on (ISO). */
  renewAfter: z.string().optional(),
  /**
   * The core's work-signing public key (SPKI DER, base64), pinned at enrollment (or, for
   * an identity from before, fetched once from the core itself): every run must carry
   * its signature.
   */
  workKey: z.string().min(1).max(4_096).optional(),
  /** The machine id of the computer this identity was enrolled on (see src/machine-id.ts). */
  machineId: z.string().min(1).max(256).optional(),
});
export type Identity = z.infer<typeof identitySchema>;

export const IDENTITY_FILE = 'identity.json';

export interface IdentityStore {
  readonly file: string;
  /** The stored identity, or undefined when there is none. Throws `AGENT_IDENTITY_CORRUPT`. */
  load(): Promise<Identity | undefined>;
  save(identity: Identity): Promise<void>;
  /** Forgets the identity (after the core rejected it, before re-enrolling). */
  clear(): Promise<void>;
  /**
   * Keeps the identity, and the task journals that belong to it, under another name
   * (`identity.<tag>.json`, `tasks.<tag>`) so the data dir holds none; returns the identity's new path.
   */
  moveAside(tag: string): Promise<string>;
}

export function createIdentityStore(dataDir: string): IdentityStore {
  const file = join(dataDir, IDENTITY_FILE);
  return {
    file,
    async load() {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new OutpostError(AgentErrors.IDENTITY_CORRUPT, `cannot read the agent identity ${file}: ${(err as Error).message}`, { cause: err });
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (cause) {
        throw new OutpostError(AgentErrors.IDENTITY_CORRUPT, `the agent identity ${file} is not JSON; delete it to enroll again`, { cause });
      }
      const r = identitySchema.safeParse(parsed);
      const cred = r.success ? parseCredential(r.data.credential) : undefined;
      if (!r.success || !cred || cred.id !== r.data.id) {
        throw new OutpostError(AgentErrors.IDENTITY_CORRUPT, `the agent identity ${file} is not a valid identity; delete it to enroll again`, {
          details: { file },
        });
      }
      return r.data;
    },
    async save(identity) {
      try {
        await writeFileAtomic(file, `${JSON.stringify(identity, null, 2)}\n`, { mkdir: true });
      } catch (cause) {
        throw new OutpostError(AgentErrors.IDENTITY_WRITE, `cannot write the agent identity ${file}: ${(cause as Error).message}`, { cause });
      }
    },
    async clear() {
      await rm(file, { force: true });
    },
    async moveAside(tag) {
      const to = join(dataDir, `identity.${tag}.json`);
      await rename(file, to);
      await rename(join(dataDir, 'tasks'), join(dataDir, `tasks.${tag}`)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      return to;
    },
  };
}
