/**
 * The sample system's own error codes. The auction site is an application
 * that Imago upgrades, not a part of Imago: its codes live here, apart from
 * Imago's registry (lib/errors.ts). A message reads
 * `CODE: what: detail. What to do.`, as Imago's do.
 */
interface AuctionErrorSpec { message: string; retryable: boolean; hint: string }

export const AUCTION_ERRORS = {
  AUCTION_CONFIG_INVALID: { message: 'The auction service configuration is invalid', retryable: false, hint: 'Fix each listed setting in the environment (AUCTION_*) or in the file named by AUCTION_CONFIG_FILE.' },
  AUCTION_START_FAILED: { message: 'The auction service did not become healthy', retryable: true, hint: 'Read the service log quoted in the message (database URL, grants, port).' },
  AUCTION_SCHEMA_UNKNOWN: { message: 'The database does not hold a known auction schema', retryable: false, hint: "Create it with setupDatabase(admin, 'v1'|'v2', ...) first." },
  AUCTION_WORKLOAD_INVALID: { message: 'Workload options are invalid', retryable: false, hint: 'Fix each listed option; unknown keys are rejected.' },
} as const satisfies Record<string, AuctionErrorSpec>;

export type AuctionErrorCode = keyof typeof AUCTION_ERRORS;

export class AuctionError extends Error {
  readonly code: AuctionErrorCode;
  readonly retryable: boolean;
  readonly hint: string;
  readonly detail: string;

  constructor(code: AuctionErrorCode, detail: string) {
    const spec: AuctionErrorSpec = AUCTION_ERRORS[code];
    super(`${code}: ${spec.message}: ${detail}. ${spec.hint}`);
    this.name = 'AuctionError';
    this.code = code;
    this.retryable = spec.retryable;
    this.hint = spec.hint;
    this.detail = detail;
  }
}

export function auctionError(code: AuctionErrorCode, detail: string): AuctionError {
  return new AuctionError(code, detail);
}
