/**
 * The comparer hook between the ingress interceptor and the compare engine.
 * The interceptor hands over one MirroredPair per mirrored request; it never
 * waits for the comparer (onPair must not block: queue and return).
 */
export interface CapturedRequest {
  method: string;
  /** Path and query, as the client sent it. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** Request body (safe methods usually have none); capped by the interceptor. */
  body?: Buffer;
}

export interface CapturedReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Time from sending the request upstream to the end of the reply, ms. */
  latencyMs: number;
  /** Set when the upstream could not be reached or the reply was cut. */
  error?: string;
}

export interface MirroredPair {
  id: number;
  /** Wall-clock ms when the primary request started. */
  at: number;
  request: CapturedRequest;
  /** Uold's reply: the one the client got. */
  primary: CapturedReply;
  /** Unew's reply to the same request. */
  shadow: CapturedReply;
  /**
   * Optional replication marks: Uold's position when its reply was produced
   * and Unew's applied position when the shadow reply was produced, so the
   * compare engine can recheck a difference that comes only from lag.
   */
  positions?: { primary?: string; shadow?: string };
}

export interface Comparer {
  onPair(pair: MirroredPair): void;
}
