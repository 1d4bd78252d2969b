// The outbound pieces of the `node` HTTP/2 codec: http2-wrapper's Agent (our subclass in
// upstream-agent.ts) and its per-session bookkeeping (session-lifecycle.ts). Loaded once, when an
// outbound with that codec starts listening, so a sidecar on the `meshcar` codec never loads
// http2-wrapper (24 modules, ~0.4 MB of live heap). No request waits for the
// load: the outbound's port opens after it, and pools read the loaded module synchronously.

import type * as AgentModule from './upstream-agent.js';
import type * as LifecycleModule from './session-lifecycle.js';

export type NodeCodec = Pick<typeof AgentModule, 'UpstreamAgent'> & typeof LifecycleModule;

let loaded: NodeCodec | undefined;
let loading: Promise<NodeCodec> | undefined;

/** Loads the node codec's modules (once; later calls share the first load). */
export function loadNodeCodec(): Promise<NodeCodec> {
  loading ??= Promise.all([import('./upstream-agent.js'), import('./session-lifecycle.js')]).then(([agent, lifecycle]) => {
    loaded = { UpstreamAgent: agent.UpstreamAgent, activeStreams: lifecycle.activeStreams, isGracefullyClosing: lifecycle.isGracefullyClosing, closeGracefully: lifecycle.closeGracefully, manageSession: lifecycle.manageSession };
    return loaded;
  });
  return loading;
}

/** The loaded node codec; a pool asks for it only after its outbound listened (loadNodeCodec() done). */
export function nodeCodec(): NodeCodec {
  if (!loaded) throw new Error('the node HTTP/2 codec was used before loadNodeCodec() finished');
  return loaded;
}
