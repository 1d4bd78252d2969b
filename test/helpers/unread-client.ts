// Test helper: a client that pipelines requests and never reads the answers, as a python3
// process with a 4 KiB receive buffer (Node cannot shrink one), so a server's responses back up
// after a few kilobytes rather than the megabytes loopback windows grow to. Stopped by the test.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

const SCRIPT = `
import socket, ssl, sys, time
port, use_tls, path, count = int(sys.argv[1]), sys.argv[2] == "tls", sys.argv[3], int(sys.argv[4])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
if use_tls:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s, server_hostname="localhost")
print(s.getsockname()[1], flush=True)
s.sendall(("GET %s HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n" % path).encode() * count)
time.sleep(300)
`;

export interface UnreadClient {
  /** The client's local port: how the server side of its connection is found. */
  readonly localPort: number;
  stop(): void;
}

export async function startUnreadClient(port: number, options: { tls: boolean; path: string; count: number }): Promise<UnreadClient> {
  const child: ChildProcess = spawn('python3', ['-c', SCRIPT, String(port), options.tls ? 'tls' : 'tcp', options.path, String(options.count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  const localPort = Number(String(line).trim());
  if (!(localPort > 0)) throw new Error(`the unread client did not connect: ${String(line)}`);
  return { localPort, stop: () => void child.kill() };
}
