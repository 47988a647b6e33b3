import { readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import { join } from 'node:path';
import type { OutpostError } from '../errors.js';
import { parseCredential } from '../secrets.js';
import { siteLinkError, type SiteLinkCodes } from './client.js';

export const SITE_IDENTITY_FILE = 'identity.json';

/**
 * What a site service keeps after enrolling: its id at the core, its credential
 * (`<id>.<secret>`, also the key of the core's signed tickles) and the core it belongs to.
 * A service with more to keep (the gateway's certificate, key and CA) names its own
 * string fields (`SiteIdentityStoreOptions.extraFields`).
 */
export interface SiteIdentity {
  version: 1;
  id: string;
  credential: string;
  coreUrl: string;
}

/**
 * Whether an identity's `coreUrl` is one of the configured core URLs (trailing slashes
 * aside): any URL of the list is the same core, so adding a core URL changes no identity.
 */
export function isOneOfCoreUrls(url: string, urls: readonly string[]): boolean {
  const u = url.replace(/\/+$/, '');
  return urls.some((x) => x.replace(/\/+$/, '') === u);
}

/** The service's own (string) fields of an identity record. */
export type ExtraFields<I extends SiteIdentity> = ReadonlyArray<Exclude<keyof I, keyof SiteIdentity> & string>;

const BASE_FIELDS: Record<keyof SiteIdentity, number> = { version: 0, id: 128, credential: 512, coreUrl: 2048 };
const EXTRA_MAX = 64 * 1024;

/**
 * Checks a record read from disk: exactly the base fields and the service's own, each a
 * bounded string (`version` the number 1). Written by hand rather than with zod: the
 * gateway's workers load this module and must not load zod (~15 MiB of RSS each).
 * Returns what is wrong, or undefined.
 */
export function identityProblem(record: unknown, extraFields: readonly string[] = []): string | undefined {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) return 'not an object';
  const r = record as Record<string, unknown>;
  if (r.version !== 1) return 'version: expected 1';
  const allowed = new Map<string, number>([...Object.entries(BASE_FIELDS), ...extraFields.map((f): [string, number] => [f, EXTRA_MAX])]);
  for (const [field, max] of allowed) {
    if (field === 'version') continue;
    const v = r[field];
    if (typeof v !== 'string' || v === '') return `${field}: expected a non-empty string`;
    if (v.length > max) return `${field}: longer than ${max} characters`;
  }
  const unknown = Object.keys(r).filter((k) => !allowed.has(k));
  return unknown.length ? `unknown field(s) ${unknown.map((k) => `'${k}'`).join(', ')}` : undefined;
}

/** An older place a service kept its identity in, read once and moved to `identity.json`. */
export interface LegacyIdentity {
  /** Where, for messages (`level meta "identity" in /var/lib/task`). */
  readonly where: string;
  /** The stored record, or undefined when there is none. */
  read(): Promise<unknown>;
  /** Removes it, after `identity.json` holds it. */
  forget(): Promise<void>;
}

export interface SiteIdentityStoreOptions<I extends SiteIdentity> {
  /** The directory of `identity.json` (created 0700 when missing). */
  dir: string;
  /** The service's own string fields, each required. @default [] */
  extraFields?: ExtraFields<I>;
  /** Says what the identity is in messages. @default 'site-server identity' */
  what?: string;
  legacy?: LegacyIdentity;
  /** The service's own codes for `IDENTITY_CORRUPT` / `IDENTITY_WRITE`. */
  codes?: SiteLinkCodes;
}

export interface SiteIdentityStore<I extends SiteIdentity = SiteIdentity> {
  readonly file: string;
  /** The stored identity (migrated from the legacy place once), or undefined. Throws `SITE_LINK_IDENTITY_CORRUPT`. */
  load(): Promise<I | undefined>;
  /** Replaces it atomically. Throws `SITE_LINK_IDENTITY_WRITE`. */
  save(identity: I): Promise<void>;
  clear(): Promise<void>;
}

/**
 * The identity file `<dir>/identity.json`, mode 0600, replaced atomically: the record is
 * written to a temp file beside it, fsynced, renamed over the old one and the directory
 * fsynced, so a crash at any point leaves the old identity or the new one, never half of
 * one. Records written before the `version` field (the gateway's) are read as version 1.
 */
export function createSiteIdentityStore<I extends SiteIdentity = SiteIdentity>(options: SiteIdentityStoreOptions<I>): SiteIdentityStore<I> {
  const extraFields: readonly string[] = options.extraFields ?? [];
  const what = options.what ?? 'site-server identity';
  const file = join(options.dir, SITE_IDENTITY_FILE);
  const codes = options.codes ?? {};
  const corrupt = (where: string, why: string, cause?: unknown): OutpostError =>
    siteLinkError(codes, 'IDENTITY_CORRUPT', `${where} does not hold a valid ${what} (${why}); delete it to enroll again`, {
      details: { file: where },
      ...(cause === undefined ? {} : { cause }),
    });

  const check = (record: unknown, where: string): I => {
    const withVersion = record !== null && typeof record === 'object' && !Array.isArray(record) && !('version' in record) ? { version: 1, ...record } : record;
    const problem = identityProblem(withVersion, extraFields);
    if (problem) throw corrupt(where, problem);
    const identity = withVersion as I;
    const cred = parseCredential(identity.credential);
    if (!cred || cred.id !== identity.id) throw corrupt(where, 'the credential does not belong to the id');
    return identity;
  };

  const save = async (identity: I): Promise<void> => {
    try {
      await writeFileAtomic(file, `${JSON.stringify(identity, null, 2)}\n`, { mkdir: true });
    } catch (cause) {
      throw siteLinkError(codes, 'IDENTITY_WRITE', `cannot write the ${what} ${file}: ${(cause as Error).message}`, { cause, details: { file } });
    }
  };

  return {
    file,
    async load() {
      let text: string | undefined;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw corrupt(file, `cannot read it: ${(err as Error).message}`, err);
      }
      if (text === undefined) {
        const legacy = options.legacy;
        const old = legacy ? await legacy.read() : undefined;
        if (!legacy || old === undefined) return undefined;
        const identity = check(old, legacy.where);
        await save(identity);
        await legacy.forget();
        return identity;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (cause) {
        throw corrupt(file, 'not JSON', cause);
      }
      const identity = check(parsed, file);
      // A record from before `version` (read as version 1): write it back in today's form.
      if (parsed !== null && typeof parsed === 'object' && !('version' in parsed)) await save(identity);
      return identity;
    },
    save,
    async clear() {
      await rm(file, { force: true });
    },
  };
}
