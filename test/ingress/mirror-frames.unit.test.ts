import { strict as assert } from 'node:assert';
import { FrameReader, headersOf, shadowHeaders } from '../../interceptors/ingress/mirrorer';

const frame = (meta: string, body: string): Buffer => Buffer.from(`IMAGO1 ${Buffer.byteLength(meta)} ${Buffer.byteLength(body)}\n${meta}${body}`);

describe('mirror shipments from the data plane', () => {
  it('splits a byte stream into frames, whatever the chunking', () => {
    const stream = Buffer.concat([frame('method=GET&url=%2Fa', '{"x":1}'), frame('method=HEAD&url=%2Fb', ''), frame('url=%2Fc&qh=a%3A1&qh=a%3A2', 'é\n\n')]);
    for (const size of [1, 3, 7, 64, stream.length]) {
      const r = new FrameReader();
      const got = [];
      for (let i = 0; i < stream.length; i += size) got.push(...r.push(stream.subarray(i, i + size)));
      assert.deepEqual(got.map((f) => [f.meta.get('url'), f.body.toString()]), [['/a', '{"x":1}'], ['/b', ''], ['/c', 'é\n\n']], `chunks of ${size}`);
      assert.deepEqual(got[2].meta.getAll('qh'), ['a:1', 'a:2']);
    }
  });

  it('refuses a stream that is not frames', () => {
    assert.throws(() => new FrameReader().push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), /bad header line/);
    assert.throws(() => new FrameReader().push(Buffer.from('x'.repeat(100))), /header line too long/);
    assert.throws(() => new FrameReader().push(Buffer.from(`IMAGO1 ${64 * 1024 * 1024} 1\n`)), /too large/);
  });

  it('rebuilds headers as Node shapes them, and the shadow copy drops hop-by-hop ones and adds its marks', () => {
    const h = headersOf(['Host:x', 'Accept:a', 'accept:b', 'Set-Cookie:1', 'set-cookie:2', 'Connection:keep-alive, X-Secret', 'X-Secret:s', 'TE:trailers', 'X-Forwarded-For:10.0.0.9', 'bad']);
    assert.deepEqual(h, { host: 'x', accept: 'a, b', 'set-cookie': ['1', '2'], connection: 'keep-alive, X-Secret', 'x-secret': 's', te: 'trailers', 'x-forwarded-for': '10.0.0.9' });
    assert.deepEqual(shadowHeaders(h, '127.0.0.1'), {
      host: 'x', accept: 'a, b', 'set-cookie': ['1', '2'], 'x-forwarded-for': '10.0.0.9, 127.0.0.1', 'x-forwarded-proto': 'http', 'x-imago-shadow': '1',
    });
  });
});
