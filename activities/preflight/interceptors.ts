/**
 * The preflight's checks of the ingress interceptors: each answers its
 * control API with the plan's token, is not holding anyone, and the plan's
 * hold timeout is within what an interceptor accepts. Read-only: GET /status.
 */
import { IngressControlClient } from '../../interceptors/ingress';
import { MAX_HOLD_TIMEOUT_MS } from '../../interceptors/ingress/switcher';
import { isLoopbackHost } from '../../interceptors/ingress/control';
import { resolveSecret } from '../../lib/secrets';
import type { Check } from '../../lib/uold-requirements';
import type { UpgradePlan } from '../../plan/types';
import { controlTlsOf } from '../context';
import { checkFromError, type ReportBuilder } from './report';

export async function checkInterceptors(r: ReportBuilder, plan: UpgradePlan): Promise<void> {
  const hold = plan.switchover.holdTimeoutMs;
  r.add('interceptors', hold <= MAX_HOLD_TIMEOUT_MS
    ? { name: 'hold timeout', status: 'ok', detail: `switchover.holdTimeoutMs ${hold} ms ≤ the interceptors' cap of ${MAX_HOLD_TIMEOUT_MS} ms; drain ${plan.switchover.drainTimeoutMs} + flush ${plan.switchover.flushTimeoutMs} ms fit in it` }
    : { name: 'hold timeout', status: 'fail', code: 'IMAGO_PLAN_INVALID', detail: `switchover.holdTimeoutMs ${hold} ms is above the ${MAX_HOLD_TIMEOUT_MS} ms an interceptor accepts: every hold would be refused`, fix: `switchover:\n  holdTimeoutMs: ${Math.min(hold, 5_000)}` });
  // Asked together, reported in the plan's order.
  r.add('interceptors', ...await Promise.all(plan.uold.ingress.map((ing, i) => checkOne(ing, i))));
}

async function checkOne(ing: UpgradePlan['uold']['ingress'][number], i: number): Promise<Check> {
  const name = `interceptor ${ing.controlUrl}`;
  let token: string;
  let tls: ReturnType<typeof controlTlsOf>;
  try { token = resolveSecret(ing.tokenRef, `/uold/ingress/${i}/tokenRef`); tls = controlTlsOf(ing, i); } catch (err) {
    return checkFromError(name, err);
  }
  try {
    const st = await new IngressControlClient(ing.controlUrl, token, 5_000, tls).status();
    if (st.hold) return { name, status: 'fail', code: 'INGRESS_BAD_TRANSITION', detail: `holding requests since ${new Date(st.hold.startedAt).toISOString()}: another cut-over is running or stuck` };
    const link = ing.controlUrl.startsWith('https://') ? `over HTTPS${tls?.cert ? ' with a client certificate' : ''}` : 'in plain HTTP';
    if (!ing.controlUrl.startsWith('https://') && !isLoopbackUrl(ing.controlUrl)) {
      return { name, status: 'warn', detail: `reachable ${link}, off loopback: its token crosses the network in clear; serve it with a certificate (--control-cert) and use https://` };
    }
    return { name, status: 'ok', detail: `reachable ${link} with its token; serving '${st.target}' (${st.upstreams[st.target] ?? '?'}), ${st.state}, ${st.inFlight} in flight` };
  } catch (err) {
    return checkFromError(name, err);
  }
}

function isLoopbackUrl(url: string): boolean {
  try { return isLoopbackHost(new URL(url).hostname); } catch { return false; }
}
