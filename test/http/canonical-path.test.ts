// The canonical form of a request path (RFC 3986 §6.2.2) that the OpenAPI matcher and the
// learned route labels share.

import t from 'tap';
import { canonicalPath } from '../../src/http/canonical-path.js';

t.test('canonicalPath: printable ASCII escapes decoded (any hex case), the rest kept with upper-case hex', async (t) => {
  t.equal(canonicalPath('/orders/mine'), '/orders/mine', 'no escape: as it is');
  t.equal(canonicalPath('/orders/%6Dine'), '/orders/mine');
  t.equal(canonicalPath('/orders/%6dine'), '/orders/mine', 'lower-case hex');
  t.equal(canonicalPath('/%6F%72ders/%2e%2E'), '/orders/..', 'dots are decoded too (the spec check refuses dot segments before matching)');
  t.equal(canonicalPath('/a%2fb%2F%25%20%00%C3%A9'), '/a%2Fb%2F%25%20%00%C3%A9', 'slash, percent, space, controls, non-ASCII stay encoded');
  t.equal(canonicalPath('/x%2541'), '/x%2541', 'an escaped percent is not a second escape');
  t.equal(canonicalPath(canonicalPath('/a%2fb%6D%2541')), canonicalPath('/a%2fb%6D%2541'), 'its own canonical form');
});
