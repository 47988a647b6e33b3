/** Error codes of the console module. */
export const ConsoleErrors = {
  /** Too many live feeds are open. */
  TOO_MANY_CLIENTS: 'CORE_CONSOLE_TOO_MANY_CLIENTS',
} as const;
