// Which address families a host-name endpoint's answers may use (src/outbound/address-families.ts):
// those this host has an address of; both when it has neither, or when its interfaces cannot
// be listed (os.networkInterfaces throws in some sandboxes: no name would ever resolve).

import t from 'tap';
import type { NetworkInterfaceInfo } from 'node:os';
import { usableFamilies } from '../../src/outbound/address-families.js';

const address = (family: 'IPv4' | 'IPv6', value: string) => ({ family, address: value, internal: family === 'IPv4' ? value.startsWith('127.') : value === '::1' }) as NetworkInterfaceInfo;

t.test('the families of the addresses the host has', async (t) => {
  t.same([...usableFamilies(() => ({ lo: [address('IPv4', '127.0.0.1')], eth0: [address('IPv4', '10.0.0.2')] }))], [4], 'IPv6 disabled: IPv4 alone');
  t.same([...usableFamilies(() => ({ lo: [address('IPv6', '::1')] }))], [6], 'IPv6 alone');
  t.same([...usableFamilies(() => ({ lo: [address('IPv4', '127.0.0.1'), address('IPv6', '::1')] }))].sort(), [4, 6], 'both, loopback counted');
  t.same([...usableFamilies(() => ({}))].sort(), [4, 6], 'no address known: both kept');
  t.same(
    [
      ...usableFamilies(() => {
        throw Object.assign(new Error('uv_interface_addresses returned Unknown system error 1'), { code: 'ERR_SYSTEM_ERROR' });
      }),
    ].sort(),
    [4, 6],
    'the interfaces cannot be listed: both kept',
  );
});
