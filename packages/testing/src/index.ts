export { tempDir, removeDir } from './temp.js';
export { e2eGate, isRoot, hasCommand, type E2eGate } from './e2e.js';
export { waitFor } from './wait.js';
export { expectErrorsDocumented, readErrorsTable, type ErrorDocRow } from './errors-doc.js';
export { openUdpProbe, type UdpProbe, type UdpDatagram } from './udp-probe.js';
export { loopbackConfig } from './appliance-config.js';
export { parseMetrics, metricTotal } from './metrics.js';
export { prng } from './prng.js';
export { freePort } from './ports.js';
