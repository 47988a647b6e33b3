import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { OutpostError, parseCredential, z } from '@outpost/common';
import { PackageServerErrors } from './errors.js';

export const identitySchema = z.object({ version: z.literal(1), id: z.string(), credential: z.string(), coreUrl: z.string() }).strict();
export type Identity = z.output<typeof identitySchema>;

/** The site-server identity (id and credential) kept in `<dataDir>/identity.json`, mode 0600. */
export function identityStore(dataDir: string) {
  const file = join(dataDir, 'identity.json');
  return {
    file,
    async load(): Promise<Identity | undefined> {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      const r = identitySchema.safeParse(JSON.parse(text));
      if (!r.success || !parseCredential(r.data.credential)) {
        throw new OutpostError(PackageServerErrors.IDENTITY_CORRUPT, `${file} does not hold a package-server identity; delete it to enroll again`);
      }
      return r.data;
    },
    async save(id: Identity): Promise<void> {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(`${file}.tmp`, JSON.stringify(id, null, 2), { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    },
  };
}

/** The identity a package server keeps in `dataDir`, or undefined before it enrolled. */
export function loadPackageServerIdentity(dataDir: string): Promise<Identity | undefined> {
  return identityStore(dataDir).load();
}
