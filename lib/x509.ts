/**
 * A small certificate authority made with the openssl command: a CA of its
 * own and the server and client certificates it signs (ECDSA P-256, PEM
 * files). The local provider makes one per universe when the plan asks for
 * TLS to Unew's database (its key never leaves the universe's folder); the
 * tests make throwaway ones for every TLS link.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { run } from './proc';
import { imagoError } from './errors';

/** A certificate and its private key, as PEM files. */
export interface CertFiles { cert: string; key: string }

export interface IssueOptions {
  /** DNS names and IP addresses the certificate is valid for (its subject alternative names). */
  names?: string[];
  /** 'server': TLS server authentication; 'client': client authentication; 'both'. */
  usage: 'server' | 'client' | 'both';
  /** Validity in days (default 30). */
  days?: number;
}

const EKU = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' } as const;

function opensslBinary(): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin'])) {
    const p = path.join(dir, 'openssl');
    if (dir && fs.existsSync(p)) return p;
  }
  throw imagoError('IMAGO_PREREQ_MISSING', "'openssl' was not found on PATH (Debian package openssl): it makes the certificates of a TLS link");
}

async function openssl(args: string[]): Promise<void> {
  try { await run(opensslBinary(), args); } catch (err) {
    throw imagoError('IMAGO_PREREQ_MISSING', `openssl ${args[0]} failed: ${(err as Error).message.slice(0, 500)}`);
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

export class CertificateAuthority {
  private constructor(readonly dir: string, readonly name: string) {}

  /** The CA's certificate: what a peer trusts to verify certificates this CA signs. */
  get certFile(): string { return path.join(this.dir, `${this.name}.pem`); }
  private get keyFile(): string { return path.join(this.dir, `${this.name}.key`); }

  /** Makes a new CA in `dir` (created with mode 0700), or opens the one already there. */
  static async create(dir: string, name: string, days = 30): Promise<CertificateAuthority> {
    if (!NAME.test(name) || name.includes(' ')) throw imagoError('IMAGO_OPTIONS_INVALID', `CA name '${name}': letters, digits, '.', '_' and '-' only`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ca = new CertificateAuthority(dir, name);
    if (fs.existsSync(ca.certFile) && fs.existsSync(ca.keyFile)) return ca;
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', ca.keyFile, '-out', ca.certFile, '-days', String(days), '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    fs.chmodSync(ca.keyFile, 0o600);
    return ca;
  }

  /** Signs a new key pair for `name` (its common name and file names); returns the files, written next to the CA's. */
  async issue(name: string, opts: IssueOptions): Promise<CertFiles> {
    if (!NAME.test(name) || name.includes(' ')) throw imagoError('IMAGO_OPTIONS_INVALID', `certificate name '${name}': letters, digits, '.', '_' and '-' only`);
    const files = { cert: path.join(this.dir, `${name}.pem`), key: path.join(this.dir, `${name}.key`) };
    const csr = path.join(this.dir, `${name}.csr`);
    const ext = path.join(this.dir, `${name}.ext`);
    const sans = (opts.names ?? []).map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`));
    fs.writeFileSync(ext, [
      ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
      `extendedKeyUsage=${EKU[opts.usage]}`, 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature',
    ].join('\n'));
    try {
      await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', files.key, '-out', csr, '-subj', `/CN=${name}`]);
      fs.chmodSync(files.key, 0o600);
      await openssl(['x509', '-req', '-in', csr, '-CA', this.certFile, '-CAkey', this.keyFile, '-CAcreateserial', '-days', String(opts.days ?? 30), '-out', files.cert, '-extfile', ext]);
    } finally {
      fs.rmSync(csr, { force: true });
      fs.rmSync(ext, { force: true });
    }
    return files;
  }

  /** Removes the CA's private key: nothing can be signed any more, what was signed stays valid. */
  forgetKey(): void { fs.rmSync(this.keyFile, { force: true }); }
}
