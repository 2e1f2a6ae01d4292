/** The ingress interceptor's public API (see docs/ingress.md). */
export { startIngress, type Ingress } from './ingress';
export { validateIngressOptions, DEFAULT_LIMITS, type IngressOptions, type IngressOptionsInput, type IngressLimits, type ComparerFactory } from './options';
export { IngressControlClient, atomicityOf, type IngressStatus, type ServedRecord, type DrainedReply, type MirrorRequest } from './control-client';
export { fleetSwitchover, holdAll, waitDrainedAll, switchAll, commitAll, releaseAll, restoreAll, forwardUntil, targetsOf, type FleetTimings, type FleetSwitchoverOptions } from './fleet';
