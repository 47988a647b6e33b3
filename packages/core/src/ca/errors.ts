/** Codes raised by the core's certificate authority. Documented in `README.md` here. */
export const CaErrors = {
  BAD_CSR: 'CORE_CA_BAD_CSR',
  BLOCKED: 'CORE_CA_BLOCKED',
  NOT_FOUND: 'CORE_CA_NOT_FOUND',
  FILES: 'CORE_CA_FILES',
  NOT_QUARANTINED: 'CORE_CA_NOT_QUARANTINED',
  NAME_NOT_APPROVED: 'CORE_CA_NAME_NOT_APPROVED',
  NOT_A_GATEWAY: 'CORE_CA_NOT_A_GATEWAY',
} as const;
