export { createSiteLink, boundHealth, SITE_HEALTH_LIMITS, type SiteHealth, type SiteLink, type SiteLinkOptions, type SiteLinkState, type SiteLinkStats, type TickleFlagName } from './site-link.js';
export { createSiteIdentityStore, identityProblem, isOneOfCoreUrls, SITE_IDENTITY_FILE, type ExtraFields, type SiteIdentity, type SiteIdentityStore, type SiteIdentityStoreOptions, type LegacyIdentity } from './identity.js';
export { enrollSiteServer, readEnrollToken, type EnrollAnswer, type EnrollRequest, type EnrollTokenSource } from './enroll.js';
export { createSiteLinkClient, siteLinkError, answerStatus, answerCode, type SiteLinkClient, type SiteLinkCodes } from './client.js';
export { CoreTickleListener, type CoreTickleStats, type TickleBinding } from './tickle-listener.js';
export { SiteLinkErrors, type SiteLinkErrorKey } from '../errors.js';
