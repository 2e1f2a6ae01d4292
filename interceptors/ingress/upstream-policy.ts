/**
 * Where the interceptor may send traffic. An upstream's host is resolved once,
 * when it is registered (the data plane connects to that address: a DNS
 * change later cannot redirect traffic), and every address must be
 *  - outside the ranges refused whatever the configuration says: link-local
 *    (cloud metadata services live there: 169.254.169.254, fd00:ec2::254),
 *    other cloud metadata addresses, "this network", multicast;
 *  - inside the allowlist given at start (`upstreamAllowlist`, `--upstream-allow`),
 *    for upstreams registered through the control API. Without one, only the
 *    start upstream's own addresses are allowed.
 * With the control token one can hold and switch traffic; without this, one
 * could also mirror it to any address.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { imagoError } from '../../lib/errors';

const REFUSED: Array<[string, number, 'ipv4' | 'ipv6', string]> = [
  ['169.254.0.0', 16, 'ipv4', 'link-local (cloud metadata services)'],
  ['100.100.100.200', 32, 'ipv4', 'a cloud metadata service'],
  ['0.0.0.0', 8, 'ipv4', '"this network"'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved or broadcast'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fd00:ec2::254', 128, 'ipv6', 'a cloud metadata service'],
  ['ff00::', 8, 'ipv6', 'multicast'],
  ['::', 128, 'ipv6', 'unspecified'],
];

/** An IPv4 address written as IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address. */
export function normaliseIp(ip: string): string {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (dotted) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip); // how URL writes it
  if (hex) {
    const [a, b] = [parseInt(hex[1], 16), parseInt(hex[2], 16)];
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  return ip;
}

const family = (ip: string): 'ipv4' | 'ipv6' => (isIP(ip) === 6 ? 'ipv6' : 'ipv4');

/** Why this address is always refused, or undefined. */
export function refusedReason(address: string): string | undefined {
  const ip = normaliseIp(address);
  for (const [net, prefix, fam, why] of REFUSED) {
    if (fam !== family(ip)) continue;
    const b = new BlockList();
    b.addSubnet(net, prefix, fam);
    if (b.check(ip, fam)) return why;
  }
  return undefined;
}

export interface Allowlist { entries: string[]; list: BlockList }

/** Parses IPs and CIDRs; throws IMAGO_OPTIONS_INVALID naming every bad entry. */
export function parseAllowlist(entries: string[]): Allowlist {
  const list = new BlockList();
  const bad: string[] = [];
  for (const e of entries) {
    const [ip, prefix, extra] = e.trim().split('/');
    const addr = normaliseIp(ip);
    const fam = isIP(addr);
    const bits = prefix === undefined ? (fam === 6 ? 128 : 32) : Number(prefix);
    if (!fam || extra !== undefined || !Number.isInteger(bits) || bits < 0 || bits > (fam === 6 ? 128 : 32)) { bad.push(e); continue; }
    list.addSubnet(addr, bits, fam === 6 ? 'ipv6' : 'ipv4');
  }
  if (bad.length) throw imagoError('IMAGO_OPTIONS_INVALID', `ingress: upstreamAllowlist: not an IP or CIDR: ${bad.join(', ')}`);
  return { entries, list };
}

export function allowed(allow: Allowlist, address: string): boolean {
  const ip = normaliseIp(address);
  return allow.list.check(ip, family(ip));
}

/** The addresses a URL's host stands for (an IP literal as is; a name resolved now). */
export async function addressesOf(url: string): Promise<{ host: string; port: number; addresses: string[] }> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 80);
  if (isIP(host)) return { host, port, addresses: [host] };
  try {
    const found = await lookup(host, { all: true });
    return { host, port, addresses: found.map((a) => a.address) };
  } catch (e) {
    throw imagoError('INGRESS_UPSTREAM_REFUSED', `cannot resolve '${host}': ${(e as Error).message}`, e);
  }
}

/**
 * Checks an upstream URL and returns the address the data plane will use.
 * `allow` undefined: only the always-refused ranges apply (the start upstream).
 */
export async function resolveUpstream(name: string, url: string, allow?: Allowlist): Promise<{ ip: string; port: number; addresses: string[] }> {
  const { host, port, addresses } = await addressesOf(url);
  const problems: string[] = [];
  for (const a of addresses) {
    const why = refusedReason(a);
    if (why) problems.push(`${a} is ${why}: never allowed`);
    else if (allow && !allowed(allow, a)) problems.push(`${a} is not in the upstream allowlist (${allow.entries.join(', ') || 'empty'})`);
  }
  if (problems.length) throw imagoError('INGRESS_UPSTREAM_REFUSED', `upstream '${name}' (${url}, host ${host}): ${problems.join('; ')}`);
  // Prefer IPv4 when a name has both (what the upstream most likely listens on).
  const ip = addresses.find((a) => isIP(normaliseIp(a)) === 4) ?? addresses[0];
  return { ip: normaliseIp(ip), port, addresses };
}
