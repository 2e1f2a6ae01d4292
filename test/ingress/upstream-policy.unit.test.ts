import { strict as assert } from 'node:assert';
import { isImagoError } from '../../lib/errors';
import { allowed, normaliseIp, parseAllowlist, refusedReason, resolveUpstream } from '../../interceptors/ingress/upstream-policy';

describe('upstream policy (where the interceptor may send traffic)', () => {
  it('always refuses link-local, cloud metadata, "this network", multicast and unspecified addresses', () => {
    for (const ip of ['169.254.169.254', '169.254.0.1', '100.100.100.200', '0.0.0.0', '0.1.2.3', '224.0.0.1', '255.255.255.255', 'fe80::1', 'fd00:ec2::254', 'ff02::1', '::', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe']) {
      assert.ok(refusedReason(ip), ip);
    }
    for (const ip of ['127.0.0.1', '10.0.0.5', '192.168.1.1', '100.100.100.201', '::1', 'fd00:ec2::253', '2001:db8::1']) assert.equal(refusedReason(ip), undefined, ip);
  });

  it('reads IPv4-mapped IPv6 addresses as IPv4, in both spellings', () => {
    assert.equal(normaliseIp('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(normaliseIp('::ffff:a9fe:a9fe'), '169.254.169.254');
    assert.equal(normaliseIp('2001:db8::1'), '2001:db8::1');
  });

  it('parses an allowlist of IPs and CIDRs, naming every bad entry at once', () => {
    const a = parseAllowlist(['10.0.0.0/8', '127.0.0.1', '::1/128', 'fd12::/16']);
    for (const ip of ['10.255.0.1', '127.0.0.1', '::1', 'fd12:3::4', '::ffff:10.0.0.1']) assert.ok(allowed(a, ip), ip);
    for (const ip of ['11.0.0.1', '127.0.0.2', '::2', 'fd13::1']) assert.ok(!allowed(a, ip), ip);
    assert.throws(() => parseAllowlist(['10.0.0.0/33', 'host.example', '1.2.3.4/8/9', '::1/129', '10.0.0.0/8']),
      (e: unknown) => isImagoError(e, 'IMAGO_OPTIONS_INVALID') && /not an IP or CIDR: 10\.0\.0\.0\/33, host\.example, 1\.2\.3\.4\/8\/9, ::1\/129\./.test(e.message));
  });

  it('checks an IP-literal upstream against both rules and returns the address to connect to', async () => {
    const a = parseAllowlist(['127.0.0.0/8']);
    assert.deepEqual(await resolveUpstream('unew', 'http://127.0.0.9:8080', a), { ip: '127.0.0.9', port: 8080, addresses: ['127.0.0.9'] });
    assert.deepEqual((await resolveUpstream('unew', 'http://10.0.0.1')).port, 80, 'no allowlist: the start upstream');
    await assert.rejects(resolveUpstream('x', 'http://10.0.0.1:1', a), /10\.0\.0\.1 is not in the upstream allowlist \(127\.0\.0\.0\/8\)/);
    await assert.rejects(resolveUpstream('x', 'http://[fd00:ec2::254]:80', parseAllowlist(['::/0'])), /fd00:ec2::254 is a cloud metadata service: never allowed/);
  });
});
