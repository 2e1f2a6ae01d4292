/**
 * The one registry of Imago's error codes. Code throws them by name
 * (`throw imagoError('IMAGO_PLAN_INVALID', detail)`), tests assert on `.code`,
 * and docs/errors.md lists the same codes (a test keeps them in sync).
 *
 * retryable=false marks validation and data-consistency failures: retrying
 * cannot help, and for consistency errors retrying could hide a real problem.
 * Each part of Imago keeps its codes in its own block below.
 */
export interface ErrorSpec {
  message: string;
  retryable: boolean;
  /** What the user should do about it. */
  hint: string;
}

export const ERRORS = {
  // --- foundation / prerequisites
  IMAGO_PREREQ_MISSING: { message: 'A required program is missing', retryable: false, hint: "Run 'bash scripts/setup.sh', which installs it or says how." },
  IMAGO_MARIADB_START: { message: 'A MariaDB instance did not start', retryable: true, hint: 'Read the error log quoted in the message.' },
  IMAGO_TEMPORAL_START: { message: 'The Temporal dev server did not start', retryable: true, hint: 'Read the server log quoted in the message; check that the port is free.' },
  IMAGO_COMMAND_FAILED: { message: 'A program Imago ran exited with an error', retryable: true, hint: 'Read the command and its output quoted in the message.' },
  // Not retried: an invariant of Imago's own code was broken; retrying would meet it again.
  IMAGO_INTERNAL: { message: 'An internal check of Imago failed', retryable: false, hint: "This is a defect in Imago, not in the plan or the systems: report it with this message and the worker's log." },
  IMAGO_OPTIONS_INVALID: { message: 'Options are invalid', retryable: false, hint: 'Fix each listed option; unknown keys are rejected.' },

  // --- plan and bootstrapping
  IMAGO_PLAN_INVALID: { message: 'The upgrade plan is invalid', retryable: false, hint: 'Fix each error listed with its path in the plan file, then start again.' },
  IMAGO_PLAN_UNREADABLE: { message: 'The upgrade plan file cannot be read or parsed', retryable: false, hint: 'Check the path and that the file is valid YAML or JSON.' },
  IMAGO_SECRET_UNRESOLVED: { message: 'A secret reference in the plan cannot be resolved', retryable: false, hint: 'Set the named environment variable or create the named file on the worker host.' },
  IMAGO_PREFLIGHT_UNREACHABLE: { message: "Uold's data store is not reachable", retryable: true, hint: "Check the URL that uold.db.urlRef names and that the database is up." },
  IMAGO_PREFLIGHT_BINLOG: { message: "Uold's binary log is not usable for change capture", retryable: false, hint: 'Start the server with --log-bin --binlog-format=ROW --binlog-row-image=FULL.' },
  IMAGO_PREFLIGHT_PRIVILEGES: { message: 'The replication user lacks a privilege', retryable: false, hint: "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* and SELECT ON the database to the user of uold.db.urlRef; 'imago preflight' prints the exact statements." },
  IMAGO_PREFLIGHT_DISK: { message: 'Not enough disk space for Unew', retryable: false, hint: 'Free disk space or point unew.local.baseDir at a larger volume.' },
  IMAGO_PREFLIGHT_FAILED: { message: 'The preflight found problems that would make the upgrade fail', retryable: false, hint: "Fix each failed check (its fix is printed with it), then run 'imago preflight <plan>' again." },
  IMAGO_SCHEMA_FILE_INVALID: { message: 'The new schema file does not apply to an empty database', retryable: false, hint: "Fix the SQL at the line named: it must apply to an empty MariaDB database, as it will to Unew's." },

  // --- ingress interceptor
  INGRESS_BAD_TRANSITION: { message: 'The interceptor cannot make this transition in its current state', retryable: false, hint: 'Read the state with GET /status and send the transition it allows.' },
  INGRESS_UNREACHABLE: { message: 'An ingress interceptor did not answer its control API', retryable: true, hint: 'Check the control URL and token in the plan.' },
  INGRESS_FLEET_ABORTED: { message: 'Fleet switchover aborted; every interceptor was released to the old target', retryable: true, hint: 'Read the cause; the live system kept serving from Uold.' },
  INGRESS_BAD_REQUEST: { message: 'A control call to the interceptor was malformed', retryable: false, hint: 'Send JSON with the fields listed in docs/ingress.md (Control API).' },
  INGRESS_UNAUTHORIZED: { message: 'The interceptor refused the control token', retryable: false, hint: 'Pass the token given to the interceptor (--token-file or IMAGO_INGRESS_TOKEN).' },
  INGRESS_DRAIN_TIMEOUT: { message: 'In-flight requests did not drain in time', retryable: true, hint: 'A slow upstream request is still running; raise the drain timeout or retry later.' },
  INGRESS_LISTEN_FAILED: { message: 'The interceptor could not listen on its address', retryable: true, hint: 'Check that the host:port is free and allowed.' },
  // Retried: past the point of no return the only way is forward, so the driver keeps trying.
  INGRESS_FLEET_PARTIAL: { message: 'Past the point of no return, an interceptor is not yet committed or released to the new target', retryable: true, hint: "Committed interceptors release forward by themselves at their hard timeout; the driver keeps moving the named one forward (hold, flush, switch, commit, release) until it answers. Restore its control API; see docs/cut-over.md." },
  INGRESS_UPSTREAM_REFUSED: { message: 'The interceptor refused an upstream address', retryable: false, hint: 'Register upstreams inside the allowlist given at start (--upstream-allow / upstreamAllowlist); link-local and cloud metadata addresses are never allowed.' },
  INGRESS_STATE_INVALID: { message: "The interceptor's state file is unreadable or damaged", retryable: false, hint: 'Read the file named in the message; fix or remove it knowing which target the interceptor must serve (it is not guessed).' },
  INGRESS_DATAPLANE_FAILED: { message: "The interceptor's data plane (nginx) failed", retryable: true, hint: "Read the nginx error quoted in the message and the error.log of the interceptor's run directory." },

  // --- data transfer
  TRANSFER_NO_PRIMARY_KEY: { message: 'A table has no primary key', retryable: false, hint: 'Add a primary key to the table, or exclude it from the conversion.' },
  TRANSFER_CONVERSION_FAILED: { message: 'A conversion function threw or returned an invalid row', retryable: false, hint: 'Fix the conversion module for the named table and key.' },
  TRANSFER_SCHEMA_MISMATCH: { message: "Converted rows do not fit Unew's schema", retryable: false, hint: "Make the conversion's output match the new schema (columns named in the message)." },
  TRANSFER_FLUSH_TIMEOUT: { message: 'Unew did not reach the flush position in time', retryable: true, hint: 'Lag is too high; let the catch-up settle or raise switchover.flushTimeoutMs.' },
  TRANSFER_VERIFY_MISMATCH: { message: "Verification found rows that differ between convert(Uold) and Unew", retryable: false, hint: 'Read the listed keys; the switchover is blocked.' },
  TRANSFER_CONVERSION_INCOMPLETE: { message: 'The conversion does not cover the tables of Uold', retryable: false, hint: 'Add a TableConversion for each named table, or list it in ignoreTables.' },
  TRANSFER_TABLE_MISSING: { message: 'A table named by the conversion does not exist', retryable: false, hint: 'Check the table names in the conversion against Uold and Unew.' },
  TRANSFER_SOURCE_UNREACHABLE: { message: "Uold's data store did not answer", retryable: true, hint: 'Check source.url and that the server is up; the transfer resumes from its saved state.' },
  TRANSFER_TARGET_UNREACHABLE: { message: "Unew's data store did not answer", retryable: true, hint: 'Check target.url and that the server is up; the transfer resumes from its saved state.' },
  TRANSFER_STREAM_FAILED: { message: 'The binlog stream from Uold failed', retryable: true, hint: 'Read the cause; if Uold purged the binlog the transfer needs, start a new transfer into an empty Unew.' },
  TRANSFER_STATE_MISMATCH: { message: "The transfer state in Unew belongs to another source or conversion", retryable: false, hint: 'Start from an empty Unew database, or use the same source and conversion as the saved state.' },
  TRANSFER_CONVERSION_INVALID: { message: 'The conversion module is malformed', retryable: false, hint: 'Fix the declaration named in the message (see docs/conversion.md).' },
  TRANSFER_SOURCE_READ_FAILED: { message: 'Uold refused a read of the transfer', retryable: true, hint: 'Read the cause (privileges, a dropped table, a timeout); the transfer resumes from its saved state.' },
  TRANSFER_TARGET_WRITE_FAILED: { message: 'Unew refused a write of the transfer', retryable: true, hint: "Read the cause (disk full, lock timeouts, Unew's limits); the transfer resumes from its saved state." },
  TRANSFER_STATE_MISSING: { message: 'No transfer state in Unew to copy against', retryable: true, hint: 'Start the transfer (the follower) first: a copy unit waits for the state it creates.' },

  // --- rollback after the switchover (reverse replication Unew -> Uold)
  ROLLBACK_REVERSE_MISSING: { message: 'The conversion has no reverse for a table it writes', retryable: false, hint: "Add an entry to the conversion's `reverse` for each named Unew table (see docs/rollback.md), or set postSwitchover.rollback.enabled: false." },
  ROLLBACK_REVERSE_NOT_INVERSE: { message: "The conversion's reverse does not give back the old row", retryable: false, hint: 'Fix the reverse (or the forward convert) of the named table: reverse(convert(row)) must equal the row quoted in the message.' },
  ROLLBACK_WRITER_PRIVILEGES: { message: "The account for writing back into Uold lacks a privilege", retryable: false, hint: "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON the database to the user of postSwitchover.rollback.uoldWriterUrlRef (used only from the point of no return); 'imago preflight' prints the statement." },

  // --- compare engine
  COMPARE_RULES_INVALID: { message: 'Compare rules are invalid', retryable: false, hint: 'Fix each listed rule in the plan.' },
  SANDBOX_UNSUPPORTED: { message: 'This provider cannot make a sandbox for shadow writes', retryable: false, hint: "The plan requires one (sandbox.enabled: true): set it to 'auto' (reads still mirrored, writes not) or false, or use the local provider; the aws provider has no sandbox yet (docs/sandbox.md)." },
  SANDBOX_FAILED: { message: "The sandbox (a clone of Unew's data with a second instance of the new version) could not be made", retryable: true, hint: "Read the cause quoted: mariadb-backup must be installed (bash scripts/setup.sh), and the new version must start on the clone as it did on Unew." },

  // --- workflow / driver
  IMAGO_ABORTED: { message: 'The upgrade was aborted', retryable: false, hint: 'Unew was destroyed; Uold was never touched.' },
  IMAGO_GATE_FAILED: { message: 'The switchover gate did not pass', retryable: false, hint: 'Read the status: failed tests, compare verdict or verification differences.' },
  IMAGO_WRONG_PHASE: { message: 'This operation is not allowed in the current phase', retryable: false, hint: "Check 'imago status <id>' for the phase and what it accepts." },
  IMAGO_TRANSFER_FAILED: { message: 'The data transfer failed', retryable: false, hint: 'Read the cause; Unew was destroyed and Uold untouched.' },
  IMAGO_CUTOVER_FAILED: { message: 'Termination did not complete within its bounds in any attempt', retryable: false, hint: 'Every interceptor was released to Uold; lower the write rate or raise switchover timeouts.' },
  IMAGO_APP_EXITED: { message: "Unew's application exited while starting", retryable: false, hint: "Read the end of its log quoted in the message: configuration, dependency or schema of the new version." },
  // Not retried: the check already waited the plan's whole unew.app.startTimeoutMs; waiting again
  // (5 attempts) only multiplied the time to the verdict, with the same log tail each time.
  IMAGO_HEALTH_FAILED: { message: 'Unew did not become healthy within its start timeout (unew.app.startTimeoutMs; on AWS unew.aws.timeouts.targetsHealthyMs)', retryable: false, hint: "Read Unew's log or the health states quoted in the message; raise that timeout if it only needs longer to start." },

  // --- providers
  PROVIDER_AWS_CAPACITY: { message: 'AWS has no capacity for the requested instances', retryable: false, hint: 'Choose another instance type or subnet/availability zone.' },
  PROVIDER_AWS_QUOTA: { message: 'An AWS quota would be exceeded', retryable: false, hint: 'Request a quota increase or lower unew.aws.count.' },
  PROVIDER_AWS_PERMISSION: { message: 'AWS refused the call for lack of permission', retryable: false, hint: 'Grant the IAM policy in docs/aws-provider.md.' },
  PROVIDER_AWS_INVALID: { message: 'A value for AWS in the plan is invalid', retryable: false, hint: 'Fix the named plan field.' },
  PROVIDER_AWS_TIMEOUT: { message: 'AWS resources did not become ready in time', retryable: true, hint: 'Check the instances and target-group health in the console.' },
  PROVIDER_AWS_TRANSIENT: { message: 'AWS throttled the call or failed transiently', retryable: true, hint: 'Nothing to fix: the call is retried with backoff; if it persists, check the AWS Health Dashboard.' },
  PROVIDER_AWS_CONFLICT: { message: 'An AWS resource is not in the state the provider expects', retryable: false, hint: 'Someone changed the listener, rule or target group by hand; restore it as named in the message.' },
  PROVIDER_AWS_IN_USE: { message: "Unew's target group still receives live traffic", retryable: false, hint: 'Switch traffic back to Uold (rollback) before tearing Unew down.' },
  PROVIDER_AWS_UNEXPECTED: { message: 'An AWS call failed in an unexpected way', retryable: true, hint: 'Read the AWS error code quoted in the message.' },

  // --- client
  CLIENT_NOT_FOUND: { message: 'No upgrade with this id', retryable: false, hint: "List upgrades with 'imago list'." },
  CLIENT_USAGE: { message: 'The command line is invalid', retryable: false, hint: "Run 'imago <command> --help' for the accepted arguments and options." },
  CLIENT_CONFIG_INVALID: { message: 'The client configuration is invalid', retryable: false, hint: 'Fix the named setting in the flag, environment variable or config file (~/.config/imago/config.json or --config).' },
  CLIENT_UNREACHABLE: { message: 'The Temporal server did not answer', retryable: true, hint: 'Check --address / TEMPORAL_ADDRESS, the namespace and TLS settings, and that the server is up.' },
  CLIENT_ALREADY_RUNNING: { message: 'An upgrade with this plan name is already running', retryable: false, hint: "Watch it with 'imago watch <id>', or abort it before starting again." },
  CLIENT_STATUS_UNAVAILABLE: { message: 'The upgrade did not answer the status query', retryable: true, hint: "A worker must be running to answer queries, even for a finished upgrade: start 'imago worker'." },
  CLIENT_COMPONENT_MISSING: { message: 'A component this command runs is not installed in this checkout', retryable: false, hint: 'Update the checkout; the named module must exist.' },
  CLIENT_SEARCH_ATTRIBUTES_MISSING: { message: "The Temporal namespace lacks Imago's search attributes", retryable: false, hint: "Register them once per namespace with 'imago server setup' (same --address and --namespace), as the message says." },
  CLIENT_SERVER_REFUSED: { message: 'The Temporal server refused the request', retryable: false, hint: "Read the server's reason in the message: a missing permission (the operator service needs an admin role), a namespace that does not exist, or a server too old for the call." },
  CLIENT_INIT_REFUSED: { message: 'imago init would overwrite files that exist', retryable: false, hint: 'Give an empty or new --out folder, or --force to overwrite the files it names.' },

  // --- TLS of every link (docs/security.md)
  INGRESS_CONTROL_INSECURE: { message: "The interceptor's control API would be served in plain HTTP on an address other hosts can reach", retryable: false, hint: 'Give it a certificate (--control-cert, --control-key; --control-client-ca to require client certificates), or keep --control on loopback; --control-allow-plain-http accepts the risk, with a warning.' },
  INGRESS_TLS_FAILED: { message: "The TLS link to an interceptor's control API failed", retryable: false, hint: "Read the cause: the CA that signed the interceptor's certificate (uold.ingress[].tls.caRef), the client certificate it requires (tls.certRef, tls.keyRef), or http/https in controlUrl." },
  DB_TLS_REQUIRED: { message: 'The database server requires TLS, and the plan has no TLS settings for it', retryable: false, hint: "Add tls to the plan's section of that database (uold.db.tls, unew.tls): caRef, the CA that signed the server's certificate, and certRef/keyRef when its account requires a client certificate." },
  DB_TLS_UNVERIFIED: { message: "The database server's certificate does not verify", retryable: false, hint: "caRef must hold the CA that signed the server's certificate, and the certificate must name the host of the URL (or set verifyIdentity: false to check only the CA's signature)." },
  DB_TLS_FAILED: { message: 'The TLS connection to the database failed', retryable: false, hint: 'Read the cause: a server without TLS, a client certificate the server refuses (certRef/keyRef), or a key that does not match its certificate.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class ImagoError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly hint: string;
  readonly detail: string;

  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown }) {
    const spec: ErrorSpec = ERRORS[code];
    super(`${code}: ${spec.message}: ${detail}. ${spec.hint}`, options);
    this.name = 'ImagoError';
    this.code = code;
    this.retryable = spec.retryable;
    this.hint = spec.hint;
    this.detail = detail;
  }
}

export function imagoError(code: ErrorCode, detail: string, cause?: unknown): ImagoError {
  return new ImagoError(code, detail, cause === undefined ? undefined : { cause });
}

export function isImagoError(err: unknown, code?: ErrorCode): err is ImagoError {
  return err instanceof ImagoError && (code === undefined || err.code === code);
}
