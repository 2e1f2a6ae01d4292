/** The ingress interceptor's public API (see docs/ingress.md). */
export { startIngress, type Ingress } from './ingress';
export { runIngressCli } from './main';
export { validateIngressOptions, DEFAULT_LIMITS, type IngressOptions, type IngressOptionsInput, type IngressLimits, type ComparerFactory } from './options';
export { IngressControlClient, atomicityOf } from './control-client';
export type { IngressStatus, ServedRecord, DrainedReply, MirrorRequest } from './api';
export { fleetSwitchover, holdAll, waitDrainedAll, switchAll, commitAll, releaseAll, restoreAll, forwardUntil, targetsOf, type FleetTimings, type FleetSwitchoverOptions } from './fleet';
