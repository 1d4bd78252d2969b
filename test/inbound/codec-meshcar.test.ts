// http2.codec picks the HTTP/2 server the inbound's callers meet (issue 9): with meshcar an h2
// caller gets meshcar's own codec (its SETTINGS show it: a 256 KiB stream window where Node's
// core server keeps 65535), with node Node's core http2, and HTTP/1.1 on the same listener is
// untouched either way. The behaviours themselves run on meshcar's codec, the default, in the
// inbound test files, and on the node codec in the codec-node-*.test.ts files, which re-run
// whole existing inbound files with it.

import t from 'tap';
import { DEFAULT_LIMITS } from '../../src/h2/index.js';
import { h1Request, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}`, async (t) => {
    const fx = await startInbound({ codec, limits: { maxConcurrentStreams: 7 } });
    t.teardown(() => fx.close());
    const tlsOptions = await fx.tlsOptions();
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.destroy());
    const res = await h2Request(session, { ':method': 'POST', ':path': '/echo' }, 'hello');
    t.equal(res.status, 200);
    t.equal(session.remoteSettings.initialWindowSize, codec === 'meshcar' ? DEFAULT_LIMITS.initialWindowSize : 65_535, 'the SETTINGS are those of the chosen codec');
    t.equal(session.remoteSettings.maxConcurrentStreams, 7, 'the inbound limit is advertised');
    t.equal((await h1Request(fx.port, tlsOptions, { method: 'POST', path: '/echo', body: 'hi' })).status, 200, 'HTTP/1.1 on the same listener');
  });
}
