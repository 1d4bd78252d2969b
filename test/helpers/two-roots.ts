// Test helper: a real inbound whose trust bundle holds two roots, its own (A, the fixture's PKI)
// and a second one (B), as in the middle of a root rotation: the state the checks of a bundle
// that drops a root start from. Closed when the test ends.

import { validateSvid } from '../../src/identity/svid.js';
import { startInbound, SERVER_ID, TD, type FixtureOptions, type InboundFixture } from './inbound-fixture.js';
import { makePki, type TestPki } from './pki.js';

export interface UnderTwoRoots {
  readonly fx: InboundFixture;
  readonly a: TestPki;
  readonly b: TestPki;
  /** A's and B's roots, what callers and the inbound trust. */
  readonly both: string;
}

export async function inboundUnderTwoRoots(t: Tap.Test, options: FixtureOptions = {}): Promise<UnderTwoRoots> {
  const fx = await startInbound(options);
  t.teardown(() => fx.close());
  const a = fx.pki;
  const b = await makePki(TD);
  const both = a.bundlePem + b.bundlePem;
  fx.identity.swap(validateSvid({ ...(await a.issue(SERVER_ID)), bundlePem: both }, SERVER_ID));
  return { fx, a, b, both };
}
