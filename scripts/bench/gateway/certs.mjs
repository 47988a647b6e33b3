// Certificates for the gateway benchmarks (bench:gateway and gateway/mem-probe.mjs): an
// ECDSA P-256 CA, a server certificate for loopback and one agent client certificate,
// made with openssl in `dir`.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export function makeCerts(dir) {
  const o = (args, input) => execFileSync('openssl', args, { cwd: dir, stdio: ['pipe', 'ignore', 'pipe'], input });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  o(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=bench-ca', '-days', '2', '-addext', 'subjectAltName=URI:outpost://bench/core/ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const leaf = (name, subj, ext) => {
    o(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj]);
    execFileSync('sh', ['-c', `printf '%s\\n' "${ext.join('" "')}" > ${name}.ext`], { cwd: dir });
    o(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
  };
  leaf('server', '/CN=gateway', ['subjectAltName=DNS:localhost,IP:127.0.0.1', 'extendedKeyUsage=serverAuth,clientAuth']);
  leaf('client', '/CN=ag_bench', ['subjectAltName=URI:outpost://bench/agent/ag_bench', 'extendedKeyUsage=clientAuth']);
  execFileSync('sh', ['-c', 'cat server.crt server.key > server.pem'], { cwd: dir });
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key'), serverCert: join(dir, 'server.crt'), serverKey: join(dir, 'server.key'), serverPem: join(dir, 'server.pem') };
}
