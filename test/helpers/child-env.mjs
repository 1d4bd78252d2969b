// Loaded into every test process (package.json tap.node-arg), after tap's own hooks: the node
// processes a test starts (sidecars, the CLI, the CA, workers) do not get tap's process-info
// hook. tap adds it to every child's NODE_OPTIONS (through process-on-spawn, which its hook
// loads) to record the process for coverage reports, which this suite does not make
// (disable-coverage); it cost each child ~0.25 s of CPU at start (module hooks on a thread of
// their own), and the suite starts some 650 node processes on a 2-core machine. A listener
// added after tap's takes it out of each child's environment again.
import processOnSpawn from 'process-on-spawn';

const withoutProcessInfo = (options) =>
  options
    .split(/\s+/)
    .filter((option) => option !== '' && !option.includes('@tapjs/processinfo'))
    .join(' ');

processOnSpawn.addListener((spawned) => {
  const env = spawned.env;
  if (env?.NODE_OPTIONS === undefined) return;
  const kept = withoutProcessInfo(env.NODE_OPTIONS);
  if (kept === '') delete env.NODE_OPTIONS;
  else env.NODE_OPTIONS = kept;
});
if (process.env.NODE_OPTIONS !== undefined) {
  const kept = withoutProcessInfo(process.env.NODE_OPTIONS);
  if (kept === '') delete process.env.NODE_OPTIONS;
  else process.env.NODE_OPTIONS = kept;
}
