/** Testing-phase activities: the plan's tests against Unew, mirrored traffic and its verdict, data verification. */
import { spawn } from 'node:child_process';
import type { UpgradePlan } from '../plan/types';
import type { SandboxHandle, UnewHandle } from '../providers/provider';
import type { TestResult } from '../workflows/status';
import { verify } from '../transfer/verify';
import { flushTo, readUoldPosition } from '../transfer/flush';
import { mergeReports } from '../compare/report';
import { runLoadTest } from './load-test';
import type { CompareReport, CompareVerdict } from '../compare/report-schema';
import type { CompareSummary, VerificationSummary } from './types';
import { ingressClients, loadConversion, planDir, readerServerId, uoldDbUrl, unewAdminUrl, withHeartbeat } from './context';

/** A test's output kept: its beginning (where the first error usually is) and its end, this many characters each. */
const OUTPUT_HEAD = 2_000;
const OUTPUT_TAIL = 2_000;

/**
 * A plan test's whole environment: PATH (the worker's, unless the test sets
 * its own), the test's declared `env`, and UNEW_URL. Nothing else of the
 * worker's: its environment holds the plan's secrets (Uold's replication URL,
 * the interceptors' token, which can hold and switch traffic), and a test is
 * the user's code. '{unewUrl}' in a value is replaced as in the command.
 */
export function testEnv(test: UpgradePlan['tests'][number], unewUrl: string, workerPath = process.env.PATH): Record<string, string> {
  const declared = Object.entries(test.env ?? {}).map(([k, v]) => [k, v.replaceAll('{unewUrl}', unewUrl)]);
  return { ...(workerPath ? { PATH: workerPath } : {}), ...Object.fromEntries(declared), UNEW_URL: unewUrl };
}

/** Runs one plan test: argv with {unewUrl} substituted, cwd = the plan's folder, only testEnv() as its environment, killed at its timeout. */
export function runCommand(test: UpgradePlan['tests'][number], unewUrl: string, cwd: string): Promise<TestResult> {
  const started = Date.now();
  const [cmd, ...args] = test.command.map((a) => a.replaceAll('{unewUrl}', unewUrl));
  return new Promise((resolve) => {
    let head = '';
    let tail = '';
    let omitted = 0;
    const child = spawn(cmd, args, { cwd, env: testEnv(test, unewUrl), stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => {
      let text = d.toString();
      if (head.length < OUTPUT_HEAD) { const take = text.slice(0, OUTPUT_HEAD - head.length); head += take; text = text.slice(take.length); }
      tail += text;
      if (tail.length > OUTPUT_TAIL) { omitted += tail.length - OUTPUT_TAIL; tail = tail.slice(-OUTPUT_TAIL); }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let killed = '';
    const timer = setTimeout(() => { killed = `\n[imago] killed after ${test.timeoutMs} ms`; child.kill('SIGKILL'); }, test.timeoutMs);
    let finished = false;
    const finish = (exitCode: number | null, error?: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      const output = head + (omitted > 0 ? `\n[imago] ${omitted} characters omitted\n` : '') + tail + killed;
      resolve({ name: test.name, passed: exitCode === 0, exitCode, durationMs: Date.now() - started, output: (error ? `${error}\n` : '') + output });
    };
    child.on('error', (err) => finish(null, `cannot run ${cmd}: ${err.message}`));
    // 'close', not 'exit': the output pipes may still hold data when the process has exited.
    child.on('close', (code) => finish(code));
  });
}

export function createTestingActivities() {
  return {
    async runPlanTests(handle: UnewHandle, plan: UpgradePlan): Promise<TestResult[]> {
      const results: TestResult[] = [];
      for (const t of plan.tests) {
        results.push(await withHeartbeat(t.name, () => runCommand(t, handle.appUrls[0], planDir(plan))));
      }
      return results;
    },

    /** Registers Unew at every interceptor and mirrors safe requests to it, compared by the compare engine. */
    async startMirror(handle: UnewHandle, plan: UpgradePlan, epoch = 0, sandbox: SandboxHandle | null = null): Promise<void> {
      for (const c of ingressClients(plan)) {
        const st = await c.status();
        const uoldUrl = st.upstreams[st.target];
        if (st.upstreams.unew !== handle.appUrls[0]) await c.addUpstream('unew', handle.appUrls[0]);
        if (sandbox && st.upstreams.sandbox !== sandbox.appUrl) await c.addUpstream('sandbox', sandbox.appUrl);
        await c.mirror({
          on: true, shadow: 'unew', percent: plan.mirror.percent, methods: plan.mirror.methods,
          // Writes only ever into the sandbox (the interceptor refuses Unew or the target there); none without one.
          ...(sandbox ? { writeShadow: 'sandbox', writePercent: plan.sandbox?.percent ?? 100, writeMethods: plan.sandbox?.methods ?? ['POST', 'PUT', 'PATCH', 'DELETE'] } : { writeShadow: null }),
          // A new epoch is a new compare config: the interceptor starts a fresh comparer (a new window).
          compare: { ...plan.compare, uoldUrl, unewUrl: handle.appUrls[0], ...(sandbox ? { sandboxUrl: sandbox.appUrl } : {}), ...(epoch ? { epoch } : {}) },
        });
      }
    },

    async runLoadTest(handle: UnewHandle, plan: UpgradePlan, sandbox: SandboxHandle | null): Promise<TestResult> {
      return runLoadTest(handle, plan, sandbox);
    },

    async stopMirror(plan: UpgradePlan): Promise<void> {
      for (const c of ingressClients(plan)) {
        const st = await c.status();
        if (st.mirror.on) await c.mirror({ on: false });
      }
    },

    /** The compare verdict across every interceptor (pass only when each passes), and whether Unew was fed meanwhile. */
    async compareVerdict(plan: UpgradePlan, handle?: UnewHandle): Promise<CompareSummary> {
      const reports: Array<{ interceptor: string; report: CompareReport }> = [];
      const failures: CompareSummary['failures'] = [];
      let samples = 0;
      for (const c of ingressClients(plan)) {
        const r = await c.compare();
        const v = r.verdict as CompareVerdict | null;
        if (r.report) reports.push({ interceptor: new URL(c.baseUrl).host, report: r.report as CompareReport });
        if (!r.comparer || !v) { failures.push({ rule: 'no-engine', endpoint: null, reason: `${c.baseUrl}: no compare engine is attached to this interceptor` }); continue; }
        samples += v.compared;
        for (const f of v.failures ?? []) failures.push({ ...f, reason: `${c.baseUrl}: ${f.reason}` });
      }
      let unewFresh = true;
      let freshness = 'not checked';
      if (handle) {
        try {
          const { waitedMs } = await flushTo(unewAdminUrl(handle, plan), handle.db.database, await readUoldPosition(uoldDbUrl(plan)), plan.transfer.maxLagMs);
          freshness = `Unew reached Uold's position in ${waitedMs} ms`;
        } catch (err) {
          unewFresh = false;
          freshness = `Unew is not being kept up to date: ${(err as Error).message}`;
        }
      }
      return {
        pass: failures.length === 0, reasons: failures.map((f) => f.reason), failures, samples, unewFresh, freshness,
        report: mergeReports(reports),
      };
    },

    /** Full verification of convert(Uold) against Unew, at consistent positions. */
    async verifyData(handle: UnewHandle, plan: UpgradePlan): Promise<VerificationSummary> {
      // A full pass reads every row of Uold: its heartbeat says how far it got (minutes at millions of rows).
      let compared = 0;
      const r = await withHeartbeat(() => `verifying: ${compared} rows of Uold compared`, () => verify({
        source: { url: uoldDbUrl(plan), database: plan.uold.db.database },
        target: { url: unewAdminUrl(handle, plan), database: handle.db.database },
        conversion: loadConversion(plan),
        chunkSize: plan.verify.chunkSize,
        niceRatio: plan.verify.niceRatio ?? 1,
        serverId: readerServerId(handle.upgradeId, 'verify'),
        flushTimeoutMs: 30_000,
        onRows: (n) => { compared += n; },
      }));
      const diffs = [...r.missing.map((d) => ({ kind: 'missing', ...d })), ...r.extra.map((d) => ({ kind: 'extra', ...d })), ...r.different.map((d) => ({ kind: 'different', ...d }))];
      return { differences: diffs.length, checked: r.rowsChecked, examples: diffs.slice(0, 20), position: r.position };
    },
  };
}
