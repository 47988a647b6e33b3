/** Codes raised by the core's audit module. Each is documented in src/audit/README.md. */
export const AuditErrors = {
  UNAVAILABLE: 'CORE_AUDIT_UNAVAILABLE',
  TOO_MANY_CLIENTS: 'CORE_AUDIT_TOO_MANY_CLIENTS',
} as const;
