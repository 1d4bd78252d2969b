// The workload's current identity: one SVID and its TLS material, replaced as a whole. Every
// listener and client reads it from here, so a rotation is one assignment, and servers are
// told to use it for new handshakes while open connections carry on with the old one.

import { EventEmitter } from 'node:events';
import { X509Certificate } from 'node:crypto';
import type tls from 'node:tls';
import type https from 'node:https';
import type http2 from 'node:http2';
import type { Logger } from 'pino';
import { MeshcarError, describeError } from '../errors.js';
import type { Svid } from './svid.js';
import { buildIdentityTls, type IdentityTls } from './tls-contexts.js';
import { splitPemCertificates } from '../pki/pem.js';

export interface RenewalEvent {
  readonly result: 'success' | 'failure';
  readonly error?: unknown;
}

export interface WorkloadIdentityEvents {
  rotated: [current: Svid, previous: Svid];
  renewal: [event: RenewalEvent];
}

export type SecureServer = tls.Server | https.Server | http2.Http2SecureServer;

interface State {
  readonly svid: Svid;
  readonly tls: IdentityTls;
}

export class WorkloadIdentity extends EventEmitter<WorkloadIdentityEvents> {
  readonly spiffeId: string;
  private state: State;
  private readonly logger: Logger;

  /** `initial` must have passed validateSvid. */
  constructor(initial: Svid, logger: Logger) {
    super();
    this.spiffeId = initial.spiffeId;
    this.logger = logger;
    this.state = { svid: initial, tls: buildIdentityTls(initial) };
  }

  current(): Svid {
    return this.state.svid;
  }

  tls(): IdentityTls {
    return this.state.tls;
  }

  /**
   * Replaces key, chain and bundle in one step, then emits 'rotated'. The new SVID must be
   * validated already and carry the same SPIFFE ID: a workload never changes who it is.
   */
  swap(next: Svid): void {
    if (next.spiffeId !== this.spiffeId) {
      throw new MeshcarError('identity_invalid', `refusing to swap in ${next.spiffeId}: this workload is ${this.spiffeId}`);
    }
    let material: IdentityTls;
    try {
      material = buildIdentityTls(next);
    } catch (err) {
      throw new MeshcarError('identity_invalid', `TLS refused the new SVID (serial ${next.serialHex}): ${describeError(err)}`, { cause: err });
    }
    const previous = this.state.svid;
    this.state = { svid: next, tls: material };
    this.logger.info({ spiffeId: this.spiffeId, serial: next.serialHex, notAfter: next.notAfter.toISOString() }, 'identity rotated');
    this.sayRootChanges(previous.bundlePem, next.bundlePem);
    this.emit('rotated', next, previous);
  }

  /**
   * The roots a swap adds or drops, said: a renewal's answer (or a bundle file) replaces the
   * bundle whole, and one that drops a root cuts every peer whose certificate chains only to
   * it. That is a root rotation's last step, or a CA handing out the wrong roots; before, the
   * swap said only "identity rotated" (a renewal's bundle was never named).
   */
  private sayRootChanges(before: string, after: string): void {
    if (before === after) return;
    const roots = (pem: string) => new Map(splitPemCertificates(pem).map((text) => {
      const cert = new X509Certificate(text);
      return [cert.fingerprint256, `"${/CN=([^\n]+)/.exec(cert.subject)?.[1] ?? 'root'}" (serial ${cert.serialNumber.toLowerCase()})`] as const;
    }));
    const was = roots(before);
    const now = roots(after);
    const added = [...now].filter(([fp]) => !was.has(fp)).map(([, name]) => name);
    const removed = [...was].filter(([fp]) => !now.has(fp)).map(([, name]) => name);
    if (removed.length > 0) {
      this.logger.warn({ rootsAdded: added, rootsRemoved: removed, roots: now.size }, `the trust bundle no longer holds ${removed.join(', ')}: peers whose certificates chain only to ${removed.length === 1 ? 'it' : 'them'} are refused from now on (a root rotation's retire step, or a CA handing out the wrong roots)`);
    } else if (added.length > 0) {
      this.logger.info({ rootsAdded: added, roots: now.size }, `the trust bundle now holds ${added.join(', ')} too`);
    }
  }

  /** For the renewal and file-watch loops, so a metrics layer can count outcomes. */
  reportRenewal(event: RenewalEvent): void {
    this.emit('renewal', event);
  }

  /**
   * Keeps the server's certificate current: applied now and after every rotation, it affects
   * only handshakes that start later. Stops by itself when the server closes; also returns a
   * function that stops it.
   */
  attachServer(server: SecureServer, extras?: Readonly<tls.SecureContextOptions>): () => void {
    const apply = () => {
      try {
        // extras (e.g. no session tickets) go into every context, or a rotation would drop them
        server.setSecureContext(extras ? { ...this.state.tls.options, ...extras } : this.state.tls.options);
      } catch (err) {
        // the material built once already; failing here would leave the old certificate serving
        this.logger.error({ err: describeError(err) }, 'could not apply the rotated identity to a server');
      }
    };
    apply();
    const detach = () => {
      this.off('rotated', apply);
      server.off('close', detach);
    };
    this.on('rotated', apply);
    server.on('close', detach);
    return detach;
  }
}
