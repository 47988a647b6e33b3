#!/usr/bin/env node
// Password hashing cost (src/admins/passwords.ts): one scrypt at the parameters Outpost
// stores (N 2^15, r 8, p 1) against OWASP's interactive-login floor (N 2^17, r 8, p 1),
// the peer an administrator would compare with. Bounded: 10 and 4 hashes. Prints
// `bench:scrypt {json}`.
import { randomBytes, scryptSync } from 'node:crypto';

const time = (logN, n) => {
  const salt = randomBytes(16);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) scryptSync('correct horse battery staple', salt, 32, { N: 2 ** logN, r: 8, p: 1, maxmem: 256 * 2 ** logN * 8 });
  return (performance.now() - t0) / n;
};
time(15, 2); // warm-up
const outpost = time(15, 10);
const owasp = time(17, 4);
console.log(`bench:scrypt ${JSON.stringify({ outpostMs: Math.round(outpost * 10) / 10, owaspFloorMs: Math.round(owasp * 10) / 10, ratio: Math.round((outpost / owasp) * 100) / 100 })}`);
