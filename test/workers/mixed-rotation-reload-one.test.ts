// mixed-rotation-reload.test.ts again with `workers: 1` on every sidecar (one process, no
// cluster): what the README promises one process through rotations and reloads holds with
// workers too, so the two files run the same flows and the same checks.

process.env.MESHCAR_TEST_MIXED_WORKERS = '1';
await import('./mixed-rotation-reload.test.js');
