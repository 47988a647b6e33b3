export { main } from './main.js';
export { processIo, type CliIo } from './io.js';
export { startAppliance, privilegedNeeds, localGrant, ServiceStartError, type Appliance, type RunningService, type StartDeps } from './appliance.js';
export { loadApplianceConfig, configuredCoreUrl } from './config/load.js';
export {
  applianceFileSchema,
  logConfigSchema,
  SERVICE_SECTIONS,
  FUTURE_SECTIONS,
  type ApplianceConfig,
  type ApplianceConfigInput,
  type ServiceSection,
} from './config/schema.js';
export { resolveTarget, findLocalCore, defaultConfigCandidates, type TargetFlags, type LocalCore } from './client/target.js';
export { callApi, ApiError, type Target } from './client/api.js';
export { ApplianceErrors, UsageError } from './errors.js';
export { formatTable } from './table.js';
