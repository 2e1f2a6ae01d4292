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
  /** Request body (safe methods usually have none; a mirrored write carries its own); capped by the interceptor. */
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
  /**
   * 'read' (default): a live safe request, the shadow is Unew. 'write': a
   * live write, the shadow is the sandbox (never Unew), compared by reply
   * shape and read-back. 'replayed': active sampling re-sent a recent safe
   * request to both universes (both replies are replays).
   */
  kind?: 'read' | 'write' | 'replayed';
}

export interface Comparer {
  onPair(pair: MirroredPair): void;
}

/** A recorded request, as the load test replays it (bodies base64 so it crosses JSON). */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  bodyBase64?: string;
  /** The endpoint it belongs to (the compare rules' naming). */
  endpoint: string;
  write: boolean;
  at: number;
}
