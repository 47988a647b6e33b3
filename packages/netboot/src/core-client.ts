import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CoreJsonClient, parseCredential, z } from '@outpost/common';
import { NetbootError, NetbootErrors } from './errors.js';

const identitySchema = z.strictObject({ version: z.literal(1), id: z.string(), credential: z.string(), coreUrl: z.string() });
type Identity = z.output<typeof identitySchema>;

/** What the core decided for one machine (`POST /api/v1/boot/decide`). */
export interface BootDecision {
  mac: string;
  computerId?: string;
  kind: 'unknown' | 'discovered' | 'predefined' | 'managed';
  image?: string;
  job?: string;
  script: string;
  ttlMs: number;
}

/** A boot image as the core describes it. */
export interface BootImageInfo {
  name: string;
  package: string;
  /** The package (null when it does not exist at the core). */
  packageInfo: Manifest | null;
}

export interface Manifest {
  id: string;
  name: string;
  version: string;
  state?: string;
  files: Array<{ path: string; size: number; sha256: string }>;
}

/** One boot event for the core's timeline. */
export interface BootEventOut {
  mac: string;
  at: number;
  type: string;
  uuid?: string;
  arch?: number;
  ip?: string;
  detail?: Record<string, string | number | boolean>;
  /** The boot id netboot's log lines of this boot carry (boot-ids.ts). */
  boot?: string;
}

/** The calls netboot makes to the core. An interface so tests can give a fake (a slow core...). */
export interface BootBackend {
  decide(input: { mac: string; uuid?: string | undefined; arch?: number | undefined; consume: boolean }): Promise<BootDecision>;
  /** The image and its package's manifest. */
  image(name: string): Promise<BootImageInfo>;
  /** URL and bearer to fetch one package file from the core. */
  fileUrl(pkgId: string, path: string): { url: string; bearer: string };
  events(items: BootEventOut[]): Promise<void>;
}

export class CoreAnswerError extends NetbootError {
  constructor(
    readonly httpStatus: number,
    readonly coreCode: string | undefined,
    message: string,
  ) {
    super(NetbootErrors.CORE_ERROR, message, { status: 502, details: { httpStatus, coreCode } });
  }
}

/** JSON calls to the core's `/api/v1`, each bounded by `timeoutMs`. */
export class CoreClient extends CoreJsonClient implements BootBackend {
  constructor(coreUrl: string, timeoutMs: number) {
    super({
      coreUrl,
      timeoutMs,
      errors: {
        unreachable: (f) => new NetbootError(NetbootErrors.CORE_UNREACHABLE, `${f.method} ${f.path}: cannot reach the core at ${f.coreUrl}: ${f.why}`, { status: 502, cause: f.cause }),
        answer: (f) => new CoreAnswerError(f.status, f.code, `${f.method} ${f.path}: ${f.status} ${f.code ?? ''} ${f.message ?? f.text.slice(0, 200)} (request ${f.requestId})`),
      },
    });
  }

  decide(input: { mac: string; uuid?: string | undefined; arch?: number | undefined; consume: boolean }): Promise<BootDecision> {
    return this.call('POST', '/boot/decide', { mac: input.mac, consume: input.consume, ...(input.uuid ? { uuid: input.uuid } : {}), ...(input.arch !== undefined ? { arch: input.arch } : {}) });
  }

  image(name: string): Promise<BootImageInfo> {
    return this.call('GET', `/boot/images/${encodeURIComponent(name)}`);
  }

  fileUrl(pkgId: string, path: string): { url: string; bearer: string } {
    return { url: `${this.apiBase}/packages/${encodeURIComponent(pkgId)}/files/${path.split('/').map(encodeURIComponent).join('/')}`, bearer: this.bearer };
  }

  async events(items: BootEventOut[]): Promise<void> {
    await this.call('POST', '/boot/events', { items });
  }

  /**
   * Loads the identity from `<dataDir>/identity.json`, or enrolls as a site server with
   * the netboot service using a token (config, token file, or `mint`).
   */
  async ensureIdentity(opts: { dataDir: string; name: string; address?: string | undefined; enrollToken?: string | undefined; enrollTokenFile?: string | undefined; mint?: (() => Promise<string>) | undefined; services: Record<string, unknown> }): Promise<string> {
    const file = join(opts.dataDir, 'identity.json');
    let id: Identity | undefined;
    try {
      const r = identitySchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
      if (!r.success || !parseCredential(r.data.credential)) throw new NetbootError(NetbootErrors.IDENTITY_CORRUPT, `${file} does not hold a netboot identity; delete it to enroll again`);
      id = r.data;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (id && id.coreUrl.replace(/\/+$/, '') !== this.coreUrl.replace(/\/+$/, '') && opts.mint) id = undefined; // in-process core moved ports: enroll again
    if (!id) {
      let token = opts.enrollToken;
      if (token === undefined && opts.enrollTokenFile !== undefined) token = (await readFile(opts.enrollTokenFile, 'utf8')).trim();
      if (token === undefined && opts.mint) token = await opts.mint();
      if (token === undefined) throw new NetbootError(NetbootErrors.NO_ENROLL_TOKEN, `no identity in ${file} and no enrollToken/enrollTokenFile to enroll with`);
      let res: { id: string; credential: string };
      try {
        res = await this.call('POST', '/enroll', { token, name: opts.name, ...(opts.address ? { address: opts.address } : {}), services: opts.services });
      } catch (err) {
        if (err instanceof CoreAnswerError && err.httpStatus < 500) throw new NetbootError(NetbootErrors.ENROLL_REJECTED, `the core refused the enrollment token: ${err.message}`, { cause: err });
        throw err;
      }
      id = { version: 1, id: res.id, credential: res.credential, coreUrl: this.coreUrl };
      await mkdir(dirname(file), { recursive: true });
      await writeFile(`${file}.tmp`, JSON.stringify(id, null, 2), { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    }
    this.bearer = id.credential;
    return id.id;
  }
}
