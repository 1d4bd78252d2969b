// grpc-route-labels.test.ts again, with every sidecar on http2.codec node (Node's core http2
// server, http2-wrapper's sessions): the gRPC record each codec makes names the call as gRPC.

process.env.MESHCAR_TEST_H2_CODEC = 'node';
await import('./grpc-route-labels.test.js');
