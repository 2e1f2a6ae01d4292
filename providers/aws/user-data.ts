/**
 * The boot script Unew's instances run (EC2 user data). It holds no secret:
 * user data is readable by anyone allowed ec2:DescribeInstanceAttribute and,
 * from the instance, through the metadata service. Each secret is named by
 * reference (unew.aws.secretEnv: NAME → ssm:/parameter) and fetched on the
 * instance at boot with the instance's own role, through the official AWS
 * CLI (SSM Parameter Store, with decryption; Secrets Manager secrets through
 * Parameter Store's /aws/reference/secretsmanager/<id> path). Then the
 * script exports the plan's `unew.app.env`, changes to `workDir` and execs
 * `unew.app.command`, so the app is the instance's boot process child with
 * exactly that environment.
 */
import { imagoError } from '../../lib/errors';

/** EC2 accepts at most 16 KB of user data before base64. */
export const USER_DATA_MAX_BYTES = 16 * 1024;

export interface BootSpec {
  upgradeId: string;
  region: string;
  workDir: string;
  command: string[];
  env: Record<string, string>;
  /** NAME → ssm:/parameter/name */
  secretEnv: Record<string, string>;
  bootScript?: string;
}

/** POSIX shell single-quoting: safe for any byte string without NUL. */
export function shellQuote(s: string): string {
  if (s.includes('\0')) throw imagoError('PROVIDER_AWS_INVALID', 'a value for the boot script contains a NUL byte');
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The parameter name of an `ssm:` reference. */
export function ssmName(ref: string): string {
  if (!ref.startsWith('ssm:') || ref.length <= 4) throw imagoError('PROVIDER_AWS_INVALID', `'${ref}' is not an SSM parameter reference (ssm:/name)`);
  return ref.slice(4);
}

export function bootScript(spec: BootSpec): string {
  for (const k of [...Object.keys(spec.env), ...Object.keys(spec.secretEnv)]) {
    if (!NAME.test(k)) throw imagoError('PROVIDER_AWS_INVALID', `environment variable name '${k}' is not valid in a shell`);
  }
  if (!spec.command.length) throw imagoError('PROVIDER_AWS_INVALID', 'unew.app.command: is empty');
  const label = spec.upgradeId.replace(/[^A-Za-z0-9._:-]/g, '_');
  const lines = [
    '#!/bin/sh',
    `# Unew of Imago upgrade ${label}: generated boot script. It holds no secret:`,
    "# each one is fetched below, with this instance's role, by the AWS CLI.",
    'set -eu',
  ];
  if (spec.bootScript?.trim()) lines.push('# unew.aws.bootScript', spec.bootScript.trimEnd(), '# end of unew.aws.bootScript');
  const secrets = Object.entries(spec.secretEnv);
  if (secrets.length) {
    lines.push(`imago_secret() { aws ssm get-parameter --region ${shellQuote(spec.region)} --with-decryption --name "$1" --query Parameter.Value --output text; }`);
    for (const [k, ref] of secrets) lines.push(`${k}="$(imago_secret ${shellQuote(ssmName(ref))})"`, `export ${k}`);
  }
  for (const [k, v] of Object.entries(spec.env)) lines.push(`export ${k}=${shellQuote(v)}`);
  lines.push(`cd ${shellQuote(spec.workDir)}`, `exec ${spec.command.map(shellQuote).join(' ')}`, '');
  const script = lines.join('\n');
  const bytes = Buffer.byteLength(script, 'utf8');
  if (bytes > USER_DATA_MAX_BYTES) throw imagoError('PROVIDER_AWS_INVALID', `the boot script is ${bytes} bytes, over EC2's ${USER_DATA_MAX_BYTES}-byte user-data limit: shorten unew.aws.bootScript or unew.app.env`);
  return script;
}
