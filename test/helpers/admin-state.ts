// What the admin server tests stand a real admin server (src/admin/server.ts) in front of: a
// state that is ready, draining nothing and shows empty views, with the parts a test is about
// given over it; and one raw exchange on a connection of its own.

import net from 'node:net';
import { once } from 'node:events';
import type { AdminState } from '../../src/admin/server.js';

/** A ready state with empty identity, config and metrics; `parts` replace or add to them. */
export function bareAdminState(parts: Partial<AdminState> = {}): AdminState {
  return {
    ready: () => true,
    draining: () => false,
    identity: () => ({}),
    config: () => ({}),
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    ...parts,
  };
}

/**
 * `bytes` on a connection of their own (`halfClose`: with the client's side ended after them);
 * the whole answer as text once the server closes the connection.
 */
export async function adminExchange(port: number, bytes: string, halfClose = false): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  await once(socket, 'connect');
  if (halfClose) socket.end(bytes);
  else socket.write(bytes);
  await once(socket, 'close');
  return text;
}
