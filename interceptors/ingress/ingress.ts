/**
 * The ingress interceptor I: a node:http reverse proxy in front of Uold with
 * quiescence (hold), an atomic target switch, mirroring to a shadow, and a
 * control API. startIngress() wires the roles together:
 *   forwarder (one request to one upstream), switcher (target and hold),
 *   mirrorer (shadow copies, comparer), recorder (evidence and figures),
 *   control (the HTTP/JSON API).
 */
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { imagoError } from '../../lib/errors';
import { createControlHandler, ingressStatus } from './control';
import { answer, forward, makeUpstream, scanRequest, type RequestHead, type Upstream } from './forwarder';
import { Mirrorer } from './mirrorer';
import { validateIngressOptions, type IngressOptions, type IngressOptionsInput } from './options';
import { nowMs, Recorder } from './recorder';
import { Switcher } from './switcher';

export interface Ingress {
  /** The proxy's address, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** The control API's address. */
  readonly controlUrl: string;
  readonly options: IngressOptions;
  status(): Record<string, unknown>;
  /** Stops accepting, releases any hold, lets in-flight requests finish (up to graceMs), then closes. */
  close(graceMs?: number): Promise<void>;
}

function listen(server: http.Server, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error): void => reject(imagoError('INGRESS_LISTEN_FAILED', `${what} on ${host}:${port}: ${e.message}`, e));
    server.once('error', onErr);
    server.listen(port, host, () => {
      server.off('error', onErr);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
};

export async function startIngress(input: IngressOptionsInput): Promise<Ingress> {
  const options = validateIngressOptions(input);
  const { limits } = options;
  const recorder = new Recorder(limits.servedLogSize);
  const first: Upstream = makeUpstream(options.upstream.name, options.upstream.url, limits.maxSocketsPerUpstream, limits.upstreamIdleTimeoutMs);
  const switcher = new Switcher(first, recorder, limits.holdQueueSize);
  const mirrorer = new Mirrorer(recorder, limits.shadowQueueSize, limits.maxCaptureBytes, options.comparerFactory);
  const onBodyTooLarge = (): void => recorder.count('tooLarge');
  const onRetry = (): void => recorder.count('upstreamRetries');
  const plain = { maxBodyBytes: limits.maxBodyBytes, retryBodyBytes: limits.retryBodyBytes, captureBytes: undefined, onBodyTooLarge, onRetry };
  const capturing = { ...plain, captureBytes: limits.maxCaptureBytes };

  const dispatch = (req: http.IncomingMessage, res: http.ServerResponse, head: RequestHead, arrived: number, up: Upstream): void => {
    switcher.begin();
    const ticket = mirrorer.on ? mirrorer.select(req, arrived) : undefined;
    forward(req, res, head, up, ticket ? capturing : plain, (r) => {
      // The request counts as in flight until its exchange is over: drained
      // means no reply from the current target is still being produced.
      switcher.end();
      recorder.served(up.name, arrived, r.start, r.end, r.status);
      if (r.status === 502) recorder.count('upstreamErrors');
      else if (r.status === 499) recorder.count('clientAborts');
      if (ticket && r.captured) ticket.onPrimary(r.captured);
    });
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const arrived = nowMs();
    recorder.count('requests');
    const refuse = (status: number, msg: string, headers: http.OutgoingHttpHeaders = {}): void => {
      answer(res, status, msg, headers);
      recorder.observe(arrived, nowMs(), status >= 500);
    };
    const head = scanRequest(req);
    if (head.upgrade) { refuse(501, 'protocol upgrades (WebSocket, h2c) are not supported by the interceptor', { connection: 'close' }); req.resume(); return; }
    if (head.contentLength > limits.maxBodyBytes) {
      recorder.count('tooLarge');
      // The body is not read: close the connection after answering.
      refuse(413, `request body larger than ${limits.maxBodyBytes} bytes`, { connection: 'close' });
      return;
    }
    if (!switcher.held) { dispatch(req, res, head, arrived, switcher.target); return; }
    const onGone = (): void => { if (switcher.cancel(id!)) recorder.count('heldDisconnected'); };
    const id = switcher.enqueue({ dispatch: (up) => { res.off('close', onGone); dispatch(req, res, head, arrived, up); } });
    if (id === undefined) {
      recorder.count('holdOverflow');
      refuse(503, `hold queue full (${limits.holdQueueSize})`, { 'retry-after': '1' });
      return;
    }
    recorder.count('held');
    res.on('close', onGone);
  };

  const server = http.createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headerTimeoutMs,
    requestTimeout: limits.bodyTimeoutMs,
    // How often Node checks the two timeouts above (default 30 s: too coarse).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headerTimeoutMs / 2))),
    keepAliveTimeout: 5_000,
  }, onRequest);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const [status, text] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'Bad Request'];
    recorder.count(status === 408 ? 'timeouts' : status === 431 ? 'tooLarge' : 'badRequests');
    if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
    const body = JSON.stringify({ error: text });
    socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  });
  server.on('upgrade', (_req: http.IncomingMessage, socket: Socket) => {
    socket.end('HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });

  const deps = { options, switcher, mirrorer, recorder };
  const control = http.createServer(createControlHandler(deps));
  const port = await listen(server, options.listen.host, options.listen.port, 'proxy');
  let controlPort: number;
  try { controlPort = await listen(control, options.control.host, options.control.port, 'control API'); } catch (e) { server.close(); throw e; }

  let closing: Promise<void> | undefined;
  return {
    url: `http://${options.listen.host}:${port}`,
    controlUrl: `http://${options.control.host}:${controlPort}`,
    options,
    status: () => ingressStatus(deps),
    close(graceMs = 10_000) {
      closing ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        switcher.shutdown();
        const drained = await switcher.waitDrained(graceMs);
        if (!drained) server.closeAllConnections();
        await closed;
        control.closeAllConnections();
        await new Promise<void>((r) => control.close(() => r()));
        for (const u of switcher.upstreams.values()) u.agent.destroy();
        mirrorer.shadow?.agent.destroy();
      })();
      return closing;
    },
  };
}
