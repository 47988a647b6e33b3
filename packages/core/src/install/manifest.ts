import { type KeyObject } from 'node:crypto';
import { signWork } from '@outpost/common';
import type { InstallFile } from './artifacts.js';

/**
 * The signed manifest of the install files: plain text, so a POSIX script can check it
 * with `openssl pkeyutl -verify -rawin` and read it with sed.
 *
 *   outpost-install-manifest 1
 *   core <the core's URL>
 *   <sha256 hex> <size> <name>        one line per file, by name
 *
 * Each line ends with `\n`. The signature is Ed25519 with the core's work-signing key
 * (what agents pin at enrollment) over these exact bytes, base64.
 */
export function manifestText(coreUrl: string, files: readonly InstallFile[]): string {
  const lines = ['outpost-install-manifest 1', `core ${coreUrl}`, ...[...files].sort((a, b) => (a.name < b.name ? -1 : 1)).map((f) => `${f.sha256} ${f.size} ${f.name}`)];
  return lines.map((l) => `${l}\n`).join('');
}

export interface SignedManifest {
  manifest: string;
  /** base64 Ed25519 over `manifest`. */
  signature: string;
  files: InstallFile[];
}

export function signManifest(privateKey: KeyObject, coreUrl: string, files: readonly InstallFile[]): SignedManifest {
  const manifest = manifestText(coreUrl, files);
  return { manifest, signature: signWork(privateKey, manifest), files: [...files] };
}
