import type * as X509 from '@peculiar/x509';

export type X509Module = typeof X509;

let loaded: Promise<X509Module> | undefined;

/**
 * Loads @peculiar/x509 on first use (it needs the `reflect-metadata` polyfill, which
 * patches the global `Reflect`): nothing happens at import time, and a core that never
 * starts its CA never loads either. Uses Node's WebCrypto.
 */
export function loadX509(): Promise<X509Module> {
  loaded ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    const { webcrypto } = await import('node:crypto');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return loaded;
}

/** ECDSA P-256 with SHA-256: every key and signature of the Outpost PKI. */
export const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** The SAN URI naming a principal: `outpost://<coreId>/<kind>/<id>`. */
export function principalUri(coreId: string, kind: string, id: string): string {
  return `outpost://${coreId}/${kind}/${id}`;
}

/** Parses {@link principalUri}; undefined when it is not one. */
export function parsePrincipalUri(uri: string): { coreId: string; kind: string; id: string } | undefined {
  const m = /^outpost:\/\/([\w.-]{1,128})\/(agent|site-server|core)\/([\w.-]{1,128})$/.exec(uri);
  return m ? { coreId: m[1]!, kind: m[2]!, id: m[3]! } : undefined;
}
