import { DEFAULT_LOADERS, HTTP_ARCHS } from './config.js';

/** Names of the IANA processor architecture types (RFC 4578 option 93), for logs and the timeline. */
export const ARCH_NAMES: Record<number, string> = {
  0: 'x86 BIOS',
  6: 'x86 UEFI',
  7: 'x64 UEFI',
  9: 'x64 UEFI',
  10: 'ARM32 UEFI',
  11: 'ARM64 UEFI',
  15: 'x86 UEFI HTTP',
  16: 'x64 UEFI HTTP',
  18: 'ARM32 UEFI HTTP',
  19: 'ARM64 UEFI HTTP',
  20: 'x86 BIOS HTTP',
  25: 'RISC-V 32 UEFI',
  27: 'RISC-V 64 UEFI',
  41: 'Raspberry Pi',
};

export const archName = (a: number): string => ARCH_NAMES[a] ?? `arch ${a}`;

/** The boot file for one architecture: a TFTP path, or (HTTP boot archs) a path under /loaders/ on HTTP. */
export interface LoaderChoice {
  arch: number;
  file: string;
  http: boolean;
}

/** Chooses boot files by architecture from the configured table merged over the defaults. */
export class LoaderTable {
  readonly #byArch = new Map<number, string>();

  constructor(overrides: Record<string, string>) {
    for (const [k, v] of Object.entries({ ...DEFAULT_LOADERS, ...overrides })) this.#byArch.set(Number(k), v);
  }

  /** The first of the client's archs we have a loader for; undefined: not answered (logged). */
  choose(archs: readonly number[]): LoaderChoice | undefined {
    for (const arch of archs) {
      const file = this.#byArch.get(arch);
      if (file !== undefined) return { arch, file, http: HTTP_ARCHS.has(arch) };
    }
    return undefined;
  }

  /** Every configured TFTP/HTTP loader file name. */
  files(): Set<string> {
    return new Set(this.#byArch.values());
  }
}
