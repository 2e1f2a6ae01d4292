/**
 * The switch record: everything the data plane needs to route a request —
 * the upstreams, the target, the hold and its hard timeout, mirroring. The
 * control plane computes each record (switcher.ts) and the data plane stores
 * it whole with one compare-and-set (lua/imago/api.lua), so a worker never
 * sees half a transition.
 *
 * Encoding: a query string (application/x-www-form-urlencoded), decoded by
 * nginx's ngx.decode_args; upstreams as repeated `up=name idx ip port url`.
 * A held record carries `to`: the record the data plane applies by itself
 * when the hold's deadline passes, with the notes to record.
 */

export interface UpstreamEntry {
  name: string;
  /** Stable small number, used in the served records. */
  idx: number;
  /** The address the data plane connects to (resolved and checked at registration). */
  ip: string;
  port: number;
  url: string;
}

export interface MirrorSettings {
  on: boolean;
  /** Where sampled safe requests are copied (Unew). */
  shadow: string | null;
  percent: number;
  methods: string[];
  /**
   * Where sampled writes (writeMethods) are copied: a disposable sandbox,
   * never the read shadow or the target (switcher.ts refuses both). Null:
   * writes are not mirrored. Absent in records of older interceptors.
   */
  writeShadow?: string | null;
  writePercent?: number;
  writeMethods?: string[];
}

export interface SwitchRecord {
  upstreams: UpstreamEntry[];
  target: string;
  held: boolean;
  /** The target when the hold began (equal to target when not held). */
  origin: string;
  /** The switch under this hold is decided: its hard timeout releases forward. */
  committed: boolean;
  startedAt: number;
  deadline: number;
  timeoutMs: number;
  mirror: MirrorSettings;
}

/** What the data plane does by itself at the deadline. */
export interface TimeoutPlan { record: SwitchRecord; switchNote?: string; reason: string }

const flag = (b: boolean): string => (b ? '1' : '0');

function params(rec: SwitchRecord): URLSearchParams {
  const p = new URLSearchParams();
  p.set('held', flag(rec.held));
  p.set('target', rec.target);
  p.set('origin', rec.origin);
  p.set('committed', flag(rec.committed));
  p.set('started', String(rec.startedAt));
  p.set('deadline', String(rec.deadline));
  p.set('timeout', String(rec.timeoutMs));
  for (const u of rec.upstreams) p.append('up', `${u.name} ${u.idx} ${u.ip} ${u.port} ${u.url}`);
  p.set('m_on', flag(rec.mirror.on));
  if (rec.mirror.shadow) p.set('m_shadow', rec.mirror.shadow);
  p.set('m_pct', String(rec.mirror.percent));
  p.set('m_methods', rec.mirror.methods.join(','));
  if (rec.mirror.writeShadow) {
    p.set('m_wshadow', rec.mirror.writeShadow);
    p.set('m_wpct', String(rec.mirror.writePercent ?? 100));
    p.set('m_wmethods', (rec.mirror.writeMethods ?? []).join(','));
  }
  return p;
}

export function encodeRecord(rec: SwitchRecord, timeout?: TimeoutPlan): string {
  const p = params(rec);
  if (rec.held && timeout) {
    p.set('to', encodeRecord(timeout.record));
    if (timeout.switchNote) p.set('to_switch', timeout.switchNote);
    p.set('to_reason', timeout.reason);
  }
  return p.toString();
}

export function decodeRecord(raw: string): SwitchRecord {
  const p = new URLSearchParams(raw);
  const num = (k: string): number => Number(p.get(k) ?? 0);
  const upstreams = p.getAll('up').map((u) => {
    const [name, idx, ip, port, url] = u.split(' ');
    return { name, idx: Number(idx), ip, port: Number(port), url };
  });
  return {
    upstreams,
    target: p.get('target') ?? '',
    held: p.get('held') === '1',
    origin: p.get('origin') ?? p.get('target') ?? '',
    committed: p.get('committed') === '1',
    startedAt: num('started'),
    deadline: num('deadline'),
    timeoutMs: num('timeout'),
    mirror: {
      on: p.get('m_on') === '1',
      shadow: p.get('m_shadow'),
      percent: p.has('m_pct') ? num('m_pct') : 100,
      methods: (p.get('m_methods') ?? '').split(',').filter(Boolean),
      writeShadow: p.get('m_wshadow'),
      writePercent: p.has('m_wpct') ? num('m_wpct') : 100,
      writeMethods: (p.get('m_wmethods') ?? '').split(',').filter(Boolean),
    },
  };
}

export function initialRecord(first: UpstreamEntry): SwitchRecord {
  return {
    upstreams: [first], target: first.name, held: false, origin: first.name, committed: false,
    startedAt: 0, deadline: 0, timeoutMs: 0, mirror: { on: false, shadow: null, percent: 100, methods: ['GET', 'HEAD'], writeShadow: null, writePercent: 100, writeMethods: [] },
  };
}

export const upstreamOf = (rec: SwitchRecord, name: string): UpstreamEntry | undefined => rec.upstreams.find((u) => u.name === name);
