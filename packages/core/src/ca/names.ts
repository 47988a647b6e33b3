import { OutpostError } from '@outpost/common';
import { canonicalHost, hostApproved } from '../grant.js';
import type { SiteServerGrant } from '../model.js';
import { CaErrors } from './errors.js';

/**
 * The DNS names and IP addresses a site server's certificate may carry: those its grant
 * approves. A CSR naming anything else is refused whole (403 `CORE_CA_NAME_NOT_APPROVED`,
 * listing the names), so a site server cannot get a certificate for the core, a gateway or
 * another site server.
 */
export function approvedCertificateNames(requested: readonly string[], approved: Pick<SiteServerGrant, 'addresses' | 'names'>): string[] {
  const names = [...new Set(requested.map(canonicalHost))];
  const refused = names.filter((n) => !hostApproved(approved, n));
  if (refused.length > 0) {
    throw new OutpostError(CaErrors.NAME_NOT_APPROVED, `the CSR names ${refused.map((n) => `'${n}'`).join(', ')}, not approved for this site server (approved: ${[...approved.addresses, ...approved.names].join(', ') || 'none'})`, {
      status: 403,
      details: { refused, approved: [...approved.addresses, ...approved.names] },
    });
  }
  return names;
}
