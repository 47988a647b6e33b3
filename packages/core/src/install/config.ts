import { z } from '@outpost/common';

/** The `core.install:` section: what `GET /install/...` serves. */
export const installConfigSchema = z
  .object({
    /**
     * The directory of built artifacts (`npm run package:agent`, `npm run package:deb`):
     * every regular file in it is in the manifest. @default the repo's `dist-pkg` when it
     * exists, else `<dataDir>/install`
     */
    dir: z.string().min(1).optional(),
  })
  .strict()
  .prefault({});

export type InstallConfig = z.output<typeof installConfigSchema>;
