import { OutpostError } from '@outpost/common/errors';

/**
 * Codes of @outpost/gateway. Refusals on the wire carry one of them in
 * `{ "error": { "code", "message" } }` with the status below; each is documented in the
 * package README.
 */
export const GatewayErrors = {
  CERT_REQUIRED: 'GATEWAY_CERT_REQUIRED',
  CERT_INVALID: 'GATEWAY_CERT_INVALID',
  CERT_REVOKED: 'GATEWAY_CERT_REVOKED',
  CERT_HELD: 'GATEWAY_CERT_HELD',
  UNKNOWN_CORE: 'GATEWAY_UNKNOWN_CORE',
  TARGET_NOT_ALLOWED: 'GATEWAY_TARGET_NOT_ALLOWED',
  BAD_REQUEST: 'GATEWAY_BAD_REQUEST',
  HEAD_TOO_LARGE: 'GATEWAY_HEAD_TOO_LARGE',
  HEAD_TIMEOUT: 'GATEWAY_HEAD_TIMEOUT',
  METHOD_NOT_ALLOWED: 'GATEWAY_METHOD_NOT_ALLOWED',
  TOO_MANY_CONNECTIONS: 'GATEWAY_TOO_MANY_CONNECTIONS',
  RATE_LIMITED: 'GATEWAY_RATE_LIMITED',
  UPSTREAM_UNREACHABLE: 'GATEWAY_UPSTREAM_UNREACHABLE',
  ENROLL_UNAVAILABLE: 'GATEWAY_ENROLL_UNAVAILABLE',
  CONFIG: 'GATEWAY_CONFIG',
  CORE_LINK: 'GATEWAY_CORE_LINK',
} as const;

export type GatewayErrorCode = (typeof GatewayErrors)[keyof typeof GatewayErrors];

export class GatewayError extends OutpostError {}
