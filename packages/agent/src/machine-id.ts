import { readFile } from 'node:fs/promises';

/** Where the machine id is looked for without `machineIdFile`: systemd's, then D-Bus's. */
export const DEFAULT_MACHINE_ID_FILES = ['/etc/machine-id', '/var/lib/dbus/machine-id'] as const;

export type MachineId = { id: string; file: string } | { id: undefined; tried: string[] };

/**
 * This computer's machine id: the first line of the first of `files` that holds one. An
 * image is often built with an empty `/etc/machine-id` (systemd fills it at first boot), or
 * with `uninitialized` in it: those count as no id, like a missing file.
 */
export async function readMachineId(files: readonly string[]): Promise<MachineId> {
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    const id = text.split(/\r?\n/, 1)[0]?.trim().toLowerCase() ?? '';
    if (id !== '' && id !== 'uninitialized') return { id, file };
  }
  return { id: undefined, tried: [...files] };
}
