/**
 * The reference proxy of the benchmarks: plain nginx (proxy_pass with upstream
 * keep-alive), configured as the interceptor's data plane is for the parts
 * they share (worker processes, reuseport, HTTP/1.1 upstream keep-alive), so
 * that a side-by-side ratio shows what Imago adds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ManagedProcess } from '../lib/proc';
import { waitForPort } from '../lib/ports';

export async function startReferenceNginx(dir: string, opts: { upstreamPort: number; listenPort: number; workers: number }): Promise<ManagedProcess> {
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, `
worker_processes ${opts.workers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream backend { server 127.0.0.1:${opts.upstreamPort}; keepalive 256; keepalive_timeout 4s; }
  server {
    listen 127.0.0.1:${opts.listenPort} backlog=4096 reuseport;
    location / {
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $http_host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}`);
  const proc = new ManagedProcess('nginx', '/usr/sbin/nginx', ['-p', dir, '-c', conf, '-e', path.join(dir, 'nginx-error.log')], path.join(dir, 'nginx.log'));
  await waitForPort(opts.listenPort, '127.0.0.1', 30_000);
  return proc;
}
