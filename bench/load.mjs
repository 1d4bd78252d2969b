// A lean HTTP/1.1 load generator over raw `net` sockets, for bench/run.mjs (or by hand).
// Keep-alive connections, one request in flight per connection, responses parsed just enough
// (status line, Content-Length or the chunked terminator), latencies in a fixed log histogram,
// so the generator itself costs little CPU. Prints one JSON object on stdout.
//
//   closed loop:  node bench/load.mjs --port P --connections 50 --duration 10
//   open loop:    node bench/load.mjs --port P --rate 1000 --connections 10 --duration 10
//
// Open loop: each connection owns an evenly staggered schedule (connection i sends at
// start + (i + k * connections) / rate). When a connection is still busy at its next slot the
// request waits, and its latency is measured from the SCHEDULED time, so queueing is not hidden
// (no coordinated omission). `service_latency_ms` is the same requests measured from the
// moment they were actually written, and `send_lag_ms` how late they were written.
//
// Options: --host 127.0.0.1 (loopback only) --port --header-host (Host header; default
// host:port) --path /orders/42 --connections --duration (s) --rate (req/s; 0 = closed loop)
// --timeout 5000 (ms per request) --grace 5000 (ms after the end for in-flight requests and an
// open-loop backlog) --max-requests 20000000 --request get|api (get: a bare GET of --path; api:
// an API call as services make them, a POST of a ~1 KB JSON body with an 800-character bearer
// token and a traceparent that differs per request, to /orders).

import { connect } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    'header-host': { type: 'string' },
    path: { type: 'string', default: '/orders/42' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '10' },
    rate: { type: 'string', default: '0' },
    timeout: { type: 'string', default: '5000' },
    grace: { type: 'string', default: '5000' },
    'max-requests': { type: 'string', default: '20000000' },
    request: { type: 'string', default: 'get' },
  },
});

function fail(message) {
  process.stderr.write(`load.mjs: ${message}\n`);
  process.exit(2);
}

const HOST = values.host;
if (HOST !== '127.0.0.1' && HOST !== 'localhost' && HOST !== '::1') fail(`--host ${HOST}: only loopback targets are allowed`);
const PORT = Number(values.port);
if (!Number.isInteger(PORT) || PORT < 1 || PORT > 65535) fail('--port is required (1-65535)');
const CONNECTIONS = Number(values.connections);
const DURATION_MS = Number(values.duration) * 1000;
const RATE = Number(values.rate);
const TIMEOUT_MS = Number(values.timeout);
const GRACE_MS = Number(values.grace);
const MAX_REQUESTS = Number(values['max-requests']);
if (!(CONNECTIONS >= 1 && CONNECTIONS <= 10_000)) fail('--connections must be 1..10000');
if (!(DURATION_MS > 0 && DURATION_MS <= 3_600_000)) fail('--duration must be 0..3600 seconds');
if (!(RATE >= 0)) fail('--rate must be >= 0');
if (!(MAX_REQUESTS >= 1)) fail('--max-requests must be >= 1');
const OPEN = RATE > 0;
const HEADER_HOST = values['header-host'] ?? `${HOST}:${PORT}`;
if (values.request !== 'get' && values.request !== 'api') fail('--request must be get or api');
/** The requests sent, in turn: one for `get`; for `api` 4,096 made up front, each with its own traceparent, so sending one costs nothing. */
const REQUESTS = values.request === 'get' ? [Buffer.from(`GET ${values.path} HTTP/1.1\r\nHost: ${HEADER_HOST}\r\nUser-Agent: meshcar-bench\r\nAccept: */*\r\n\r\n`, 'latin1')] : apiRequests(4096);
let nextRequest = 0;

function apiRequests(count) {
  const hex = (n) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const token = `eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.${Array.from({ length: 720 }, () => alphabet[Math.floor(Math.random() * 64)]).join('')}.${'x'.repeat(43)}`;
  const body = JSON.stringify({ customer: 'c-1042', currency: 'EUR', items: Array.from({ length: 12 }, (_, i) => ({ sku: `sku-${1000 + i}`, qty: 1 + (i % 3), price: '12.90' })), note: 'deliver to the back door' });
  return Array.from({ length: count }, () =>
    Buffer.from(`POST /orders HTTP/1.1\r\nHost: ${HEADER_HOST}\r\nUser-Agent: meshcar-bench\r\nAccept: application/json\r\nContent-Type: application/json\r\nAuthorization: Bearer ${token}\r\ntraceparent: 00-${hex(32)}-${hex(16)}-01\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, 'latin1'),
  );
}

// ---- histogram: 1 µs .. 10 s, 200 log buckets per decade (bucket width ~1.2 %) -------------
const PER_DECADE = 200;
const DECADES = 7;
const BUCKETS = PER_DECADE * DECADES + 2; // [0] < 1 µs, [last] >= 10 s

class Histogram {
  constructor() {
    this.counts = new Float64Array(BUCKETS);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
  }

  record(us) {
    let i = us < 1 ? 0 : 1 + Math.floor(Math.log10(us) * PER_DECADE);
    if (i >= BUCKETS) i = BUCKETS - 1;
    this.counts[i]++;
    this.count++;
    this.sum += us;
    if (us < this.min) this.min = us;
    if (us > this.max) this.max = us;
  }

  /** The bucket's geometric middle, clamped to the observed min and max; microseconds. */
  percentile(p) {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        const value = i === 0 ? 0.5 : 10 ** ((i - 0.5) / PER_DECADE);
        return Math.min(this.max, Math.max(this.min, value));
      }
    }
    return this.max;
  }

  summary() {
    const ms = (us) => (us === null ? null : Math.round(us) / 1000);
    if (this.count === 0) return { count: 0 };
    return {
      count: this.count,
      min: ms(this.min),
      mean: ms(this.sum / this.count),
      p50: ms(this.percentile(50)),
      p90: ms(this.percentile(90)),
      p99: ms(this.percentile(99)),
      p999: ms(this.percentile(99.9)),
      p9999: ms(this.percentile(99.99)),
      max: ms(this.max),
    };
  }
}

const latency = new Histogram(); // from the scheduled time (closed loop: from the write)
const service = new Histogram(); // from the write (open loop only)
const sendLag = new Histogram(); // write time minus scheduled time (open loop only)

const now = () => performance.now();
const errors = { non2xx: 0, connect: 0, reset: 0, timeout: 0, parse: 0, unfinished: 0, unsent: 0 };
const statuses = Object.create(null);
let sent = 0;
let completed = 0;
let ok = 0;
let okInWindow = 0;
let lastCompletion = 0;
let startAt = 0;
let endAt = Infinity;
let stopping = false;
let finished = false;

// ---- one keep-alive connection ---------------------------------------------------------------
const HEAD = 0;
const BODY_LENGTH = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_TRAILER = 4;
const BODY_UNTIL_CLOSE = 5;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const RE_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const RE_CHUNKED = /\r\ntransfer-encoding:[^\r\n]*chunked/i;
const RE_CLOSE = /\r\nconnection:[^\r\n]*close/i;
const PERIOD_MS = OPEN ? (CONNECTIONS * 1000) / RATE : 0;
const EARLY_MS = 1;

class Connection {
  constructor(index) {
    this.index = index;
    this.socket = null;
    this.connected = false;
    this.busy = false;
    this.sentAt = 0;
    this.scheduledAt = 0;
    this.slot = 0; // open loop: index of the next slot in this connection's schedule
    this.timer = null;
    this.reconnects = 0;
    this.resetParser();
  }

  resetParser() {
    this.state = HEAD;
    this.head = null; // partial head bytes across packets
    this.line = ''; // partial chunk-size / trailer line
    this.remaining = 0;
    this.status = 0;
    this.closeAfter = false;
  }

  open(onConnected) {
    const socket = connect({ host: HOST, port: PORT });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      this.connected = true;
      if (onConnected) onConnected();
      else this.next();
    });
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (err) => {
      if (!this.connected) errors.connect++;
      else if (this.busy) errors.reset++;
      this.busy = false;
      if (!this.connected && onConnected) onConnected(err);
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      if (this.busy) {
        errors.reset++;
        this.busy = false;
      }
      this.connected = false;
      this.socket = null;
      if (!stopping && this.reconnects++ < 1000) setTimeout(() => this.open(null), this.reconnects > 3 ? 50 : 1);
      maybeFinish();
    });
  }

  /** Sends the next request if one is due, or sets a timer for it. */
  next() {
    if (this.busy || !this.connected || finished) return;
    if (sent >= MAX_REQUESTS) {
      stopping = true;
      return maybeFinish();
    }
    const t = now();
    if (!OPEN) {
      if (stopping || t >= endAt) return maybeFinish();
      return this.send(t, t);
    }
    const due = startAt + (this.index / CONNECTIONS + this.slot) * PERIOD_MS;
    if (due >= endAt) return maybeFinish();
    // A timer may wake up to a millisecond early (libuv's clock is in whole ms): send then,
    // and measure that request from its actual write so an early send is never credited.
    if (t >= due - EARLY_MS) {
      this.slot++;
      return this.send(due, t);
    }
    if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.next();
      }, Math.max(0, Math.floor(due - t)));
    }
  }

  send(scheduled, t) {
    this.busy = true;
    this.scheduledAt = scheduled;
    this.sentAt = t;
    this.resetParser();
    sent++;
    this.socket.write(REQUESTS[nextRequest]);
    nextRequest = (nextRequest + 1) % REQUESTS.length;
  }

  onData(chunk) {
    let pos = 0;
    const length = chunk.length;
    while (pos < length) {
      if (!this.busy) {
        // bytes nobody asked for: the connection is out of step, start a new one
        errors.parse++;
        this.socket.destroy();
        return;
      }
      switch (this.state) {
        case HEAD: {
          let buf = chunk;
          let base = pos;
          if (this.head !== null) {
            buf = Buffer.concat([this.head, chunk.subarray(pos)]);
            base = 0;
          }
          const end = buf.indexOf(CRLFCRLF, base);
          if (end < 0) {
            this.head = base === 0 && buf !== chunk ? buf : Buffer.from(buf.subarray(base));
            if (this.head.length > 65536) {
              errors.parse++;
              this.busy = false;
              this.socket.destroy();
            }
            return;
          }
          const text = buf.toString('latin1', base, end + 2);
          const consumedFromChunk = this.head !== null ? end + 4 - this.head.length : end + 4 - pos;
          this.head = null;
          pos += consumedFromChunk;
          if (text.charCodeAt(0) !== 72 /* H */ || text.length < 12) {
            errors.parse++;
            this.busy = false;
            this.socket.destroy();
            return;
          }
          this.status = (text.charCodeAt(9) - 48) * 100 + (text.charCodeAt(10) - 48) * 10 + (text.charCodeAt(11) - 48);
          if (this.status >= 100 && this.status < 200) continue; // 100-continue and friends: read on
          this.closeAfter = RE_CLOSE.test(text) || text.charCodeAt(7) === 48; // HTTP/1.0
          let m;
          if (this.status === 204 || this.status === 304) {
            this.done();
          } else if (RE_CHUNKED.test(text)) {
            this.state = CHUNK_SIZE;
            this.line = '';
          } else if ((m = RE_LENGTH.exec(text)) !== null) {
            this.remaining = Number(m[1]);
            if (this.remaining === 0) this.done();
            else this.state = BODY_LENGTH;
          } else {
            this.state = BODY_UNTIL_CLOSE;
            this.closeAfter = true;
            return;
          }
          break;
        }
        case BODY_LENGTH:
        case CHUNK_DATA: {
          const take = Math.min(this.remaining, length - pos);
          pos += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            if (this.state === BODY_LENGTH) this.done();
            else this.state = CHUNK_SIZE;
          }
          break;
        }
        case CHUNK_SIZE:
        case CHUNK_TRAILER: {
          const nl = chunk.indexOf(10, pos);
          if (nl < 0) {
            this.line += chunk.toString('latin1', pos);
            if (this.line.length > 4096) {
              errors.parse++;
              this.busy = false;
              this.socket.destroy();
            }
            return;
          }
          const line = (this.line + chunk.toString('latin1', pos, nl)).replace(/\r$/, '');
          this.line = '';
          pos = nl + 1;
          if (this.state === CHUNK_TRAILER) {
            if (line === '') this.done();
          } else {
            const size = parseInt(line, 16);
            if (Number.isNaN(size)) {
              errors.parse++;
              this.busy = false;
              this.socket.destroy();
              return;
            }
            if (size === 0) this.state = CHUNK_TRAILER;
            else {
              this.remaining = size + 2; // data and its CRLF
              this.state = CHUNK_DATA;
            }
          }
          break;
        }
        case BODY_UNTIL_CLOSE:
          return;
      }
    }
  }

  done() {
    const t = now();
    this.busy = false;
    this.state = HEAD;
    completed++;
    lastCompletion = t;
    const status = this.status;
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status >= 200 && status < 300) {
      ok++;
      if (t <= endAt) okInWindow++;
      // From the scheduled time, unless the timer fired a hair early: never credit early sends.
      const from = this.scheduledAt < this.sentAt ? this.scheduledAt : this.sentAt;
      latency.record((t - from) * 1000);
      if (OPEN) {
        service.record((t - this.sentAt) * 1000);
        sendLag.record(Math.max(0, this.sentAt - this.scheduledAt) * 1000);
      }
    } else {
      errors.non2xx++;
    }
    if (this.closeAfter) {
      this.socket.destroy(); // the close handler reconnects
      return;
    }
    this.next();
  }
}

// ---- run -------------------------------------------------------------------------------------
const conns = Array.from({ length: CONNECTIONS }, (_, i) => new Connection(i));
let cpuStart;
let watchdog;

function maybeFinish() {
  if (finished || startAt === 0) return;
  const t = now();
  if (t < endAt && !stopping) return;
  if (conns.some((c) => c.busy)) return;
  if (OPEN && t < endAt + GRACE_MS && sent < MAX_REQUESTS) {
    // the backlog: slots whose time came before the end but were not sent yet
    const pending = conns.some((c) => c.connected && startAt + (c.index / CONNECTIONS + c.slot) * PERIOD_MS < endAt);
    if (pending) return;
  }
  finish();
}

function finish() {
  if (finished) return;
  finished = true;
  stopping = true;
  const t = now();
  const cpu = process.cpuUsage(cpuStart);
  clearInterval(watchdog);
  for (const c of conns) {
    if (c.timer) clearTimeout(c.timer);
    if (c.busy) errors.unfinished++;
    if (OPEN) {
      // slots scheduled inside the window that were never sent (lost to a backlog or dead connection)
      const total = Math.max(0, Math.ceil(((endAt - startAt) / PERIOD_MS) - c.index / CONNECTIONS));
      errors.unsent += Math.max(0, total - c.slot);
    }
    c.busy = false;
    c.socket?.destroy();
  }
  const windowS = (endAt - startAt) / 1000;
  const elapsedS = (Math.max(endAt, lastCompletion) - startAt) / 1000;
  const errorTotal = errors.non2xx + errors.connect + errors.reset + errors.timeout + errors.parse + errors.unfinished + errors.unsent;
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const result = {
    target: `${HOST}:${PORT}`,
    hostHeader: HEADER_HOST,
    path: values.path,
    mode: OPEN ? 'open' : 'closed',
    connections: CONNECTIONS,
    duration_s: windowS,
    rate: OPEN ? RATE : null,
    elapsed_s: Math.round(elapsedS * 1000) / 1000,
    requests: { sent, completed, ok },
    // successful responses per second: closed loop counts those finished inside the window;
    // open loop all of them over the time until the last one (a backlog stretches it)
    rps: Math.round((OPEN ? ok / Math.max(windowS, elapsedS) : okInWindow / windowS) * 10) / 10,
    errors: { total: errorTotal, ...errors },
    status: statuses,
    latency_ms: latency.summary(),
    ...(OPEN ? { service_latency_ms: service.summary(), send_lag_ms: sendLag.summary() } : {}),
    generator: { cpu_s: Math.round(cpuSeconds * 1000) / 1000, user_s: cpu.user / 1e6, system_s: cpu.system / 1e6, cpu_us_per_request: completed ? Math.round((cpuSeconds * 1e6) / completed * 10) / 10 : null },
  };
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

// Connect every connection first, then start the clock.
let pendingConnects = CONNECTIONS;
const connectTimer = setTimeout(() => fail(`could not connect ${pendingConnects} of ${CONNECTIONS} connections to ${HOST}:${PORT} within 5 s`), 5000);
for (const c of conns) {
  c.open((err) => {
    if (err) fail(`connect to ${HOST}:${PORT}: ${err.code ?? err.message}`);
    if (--pendingConnects > 0) return;
    clearTimeout(connectTimer);
    c.reconnects = 0;
    start();
  });
}

function start() {
  cpuStart = process.cpuUsage();
  startAt = now();
  endAt = startAt + DURATION_MS;
  // per-request timeouts, the end of the window, and the hard stop
  watchdog = setInterval(() => {
    const t = now();
    for (const c of conns) {
      if (c.busy && t - c.sentAt > TIMEOUT_MS) {
        errors.timeout++;
        c.busy = false;
        c.socket?.destroy();
      }
    }
    if (t >= endAt) {
      stopping = true;
      maybeFinish();
    }
    if (t >= endAt + GRACE_MS) finish();
  }, 50);
  for (const c of conns) c.next();
}
