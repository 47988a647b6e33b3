// debian/copyright (machine-readable format 1.0) for the packages: Outpost's own code, the
// Node.js runtime each package carries, and every npm package bundled with it.

const EXPAT = `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.`;

const ISC = `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.`;

const ZERO_BSD = `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted.

THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH
REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY
AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT,
INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING FROM
LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR
OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR
PERFORMANCE OF THIS SOFTWARE.`;

/** npm's SPDX ids as DEP-5 short names, and each one's license paragraph. */
const NAMES = { MIT: 'Expat', ISC: 'ISC', '0BSD': '0BSD', 'Apache-2.0': 'Apache-2.0', 'BSD-2-Clause': 'BSD-2-Clause', 'BSD-3-Clause': 'BSD-3-Clause' };
const TEXTS = {
  Expat: EXPAT,
  ISC,
  '0BSD': ZERO_BSD,
  'Apache-2.0': 'On Debian systems, the complete text of the Apache License, Version 2.0\ncan be found in "/usr/share/common-licenses/Apache-2.0".',
  'BSD-2-Clause': "The text is in the package's LICENSE file (beside its package.json, or in\nthe bundled package's own distribution).",
  'BSD-3-Clause': "The text is in the package's LICENSE file (beside its package.json, or in\nthe bundled package's own distribution).",
  'Node.js': 'Node.js is under the Expat license; the libraries it embeds (V8, libuv,\nOpenSSL, ICU, zlib, llhttp, nghttp2 and others) under their own free licenses.\nThe full text is in nodejs-LICENSE.gz beside this file.',
};

const indent = (text) => text.split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l}`)).join('\n');
const shortName = (spdx) => {
  const n = NAMES[spdx];
  if (!n) throw new Error(`no license paragraph for '${spdx}': add it to scripts/package/deb/copyright.mjs`);
  return n;
};

/**
 * `bundled`: `{ files, packages }` groups: the paths (DEP-5 `Files:` globs) and the npm
 * packages (`{ name, version, license }`) in them. `node`: the glob of the Node.js runtime.
 */
export function copyright({ year, bundled, node }) {
  const used = new Set(['Expat', 'Node.js']);
  const paras = [
    `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: Outpost\nUpstream-Contact: Outpost maintainers <maintainers@outpost.example.org>\nSource: https://github.com/outpost/outpost`,
    `Files: *\nCopyright: ${year} Outpost maintainers\nLicense: Expat`,
  ];
  // One file may hold the runtime and the packages (the single-file agent): one paragraph.
  if (!bundled.some((g) => g.files === node)) paras.push(`Files: ${node}\nCopyright: Node.js contributors and others (see nodejs-LICENSE.gz)\nLicense: Node.js`);
  for (const group of bundled) {
    const names = [...new Set([...(group.files === node ? ['Node.js'] : []), ...group.packages.map((p) => shortName(p.license))])].sort();
    for (const n of names) used.add(n);
    const list = group.packages.map((p) => `${p.name} ${p.version} (${shortName(p.license)})`).join('\n');
    paras.push(`Files: ${group.files}\nCopyright: the authors of each package (see its package.json)\nLicense: ${names.join(' and ')}\nComment: bundled npm packages:\n${indent(list)}`);
  }
  for (const n of [...used].sort()) paras.push(`License: ${n}\n${indent(TEXTS[n])}`);
  return `${paras.join('\n\n')}\n`;
}
