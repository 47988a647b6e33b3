import { CoreJsonClient } from '@outpost/common';
import { NetbootError, NetbootErrors } from './errors.js';

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

/**
 * JSON calls to the core's `/api/v1` (one core URL or several, failed over in order), each bounded by `timeoutMs`. The site link
 * (`@outpost/common/site-link`) enrolls with it and sets its bearer.
 */
export class CoreClient extends CoreJsonClient implements BootBackend {
  constructor(coreUrl: string | readonly string[], timeoutMs: number) {
    super({
      coreUrls: typeof coreUrl === 'string' ? [coreUrl] : coreUrl,
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
}
