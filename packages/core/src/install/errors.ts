/** Codes raised by the core's install module. Each is documented in `README.md` here. */
export const InstallErrors = {
  TOKEN_REFUSED: 'CORE_INSTALL_TOKEN_REFUSED',
  FILE_NOT_FOUND: 'CORE_INSTALL_FILE_NOT_FOUND',
  NO_AGENT: 'CORE_INSTALL_NO_AGENT',
  DIR: 'CORE_INSTALL_DIR',
  NO_PACKAGES: 'CORE_INSTALL_NO_PACKAGES',
} as const;
