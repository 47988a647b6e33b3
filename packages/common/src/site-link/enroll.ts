import { readFile } from 'node:fs/promises';
import { answerCode, answerStatus, siteLinkError, type SiteLinkClient, type SiteLinkCodes } from './client.js';

/** Where an enrollment token comes from, first found wins. */
export interface EnrollTokenSource {
  enrollToken?: string | undefined;
  /** A file whose first line is the token. */
  enrollTokenFile?: string | undefined;
  /** Mints a token (the appliance, next to an in-process core). */
  mint?: (() => Promise<string | undefined>) | undefined;
}

/** What a site server states when it enrolls (beside the token). */
export interface EnrollRequest {
  name: string;
  services: Record<string, unknown>;
  address?: string | undefined;
  tickleAddress?: string | undefined;
  /** A PEM PKCS#10 request: the core's CA then issues a certificate. */
  csr?: string | undefined;
}

/** The core's answer to `POST /enroll` (a service reads its own extra fields, e.g. `certificate`). */
export interface EnrollAnswer {
  id: string;
  credential: string;
  heartbeatIntervalMs?: number;
  [field: string]: unknown;
}

/** The answer when it carries an id and a credential (and a sane heartbeat interval, if any). */
function asEnrollAnswer(raw: unknown): EnrollAnswer | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const a = raw as Record<string, unknown>;
  if (typeof a.id !== 'string' || a.id === '' || a.id.length > 128 || typeof a.credential !== 'string' || a.credential.length < 3 || a.credential.length > 512) return undefined;
  const hb = a.heartbeatIntervalMs;
  if (hb !== undefined && !(typeof hb === 'number' && Number.isInteger(hb) && hb > 0)) return undefined;
  return a as EnrollAnswer;
}

/** The token, or undefined when no source gives one. Never logged. */
export async function readEnrollToken(src: EnrollTokenSource, codes: SiteLinkCodes = {}): Promise<string | undefined> {
  if (src.enrollToken) return src.enrollToken;
  if (src.enrollTokenFile) {
    let text: string;
    try {
      text = await readFile(src.enrollTokenFile, 'utf8');
    } catch (cause) {
      throw siteLinkError(codes, 'NO_ENROLL_TOKEN', `cannot read the enrollment token file ${src.enrollTokenFile}: ${(cause as Error).message}`, { cause });
    }
    const t = text.split(/\r?\n/, 1)[0]?.trim();
    if (t) return t;
  }
  return (await src.mint?.()) || undefined;
}

/**
 * `POST /api/v1/enroll` with the token and what the site server states. A 4xx answer
 * is `SITE_LINK_ENROLL_REJECTED` (with the core's code in `details.coreCode`); no
 * answer rethrows the client's error; an answer without id and credential is
 * `SITE_LINK_CORE_ERROR`.
 */
export async function enrollSiteServer(client: SiteLinkClient, token: string, req: EnrollRequest, codes: SiteLinkCodes = {}): Promise<EnrollAnswer> {
  let raw: unknown;
  try {
    raw = await client.call('POST', '/enroll', {
      token,
      name: req.name,
      ...(req.address ? { address: req.address } : {}),
      ...(req.tickleAddress ? { tickleAddress: req.tickleAddress } : {}),
      services: req.services,
      ...(req.csr ? { csr: req.csr } : {}),
    });
  } catch (err) {
    const status = answerStatus(err);
    if (status !== undefined && status >= 400 && status < 500) {
      throw siteLinkError(codes, 'ENROLL_REJECTED', `the core refused to enroll ${req.name}: ${(err as Error).message}`, { status: 502, cause: err, details: { status, coreCode: answerCode(err) } });
    }
    throw err;
  }
  const answer = asEnrollAnswer(raw);
  if (!answer) throw siteLinkError(codes, 'CORE_ERROR', `the core answered the enrollment of ${req.name} without an id and credential`, { status: 502 });
  return answer;
}
