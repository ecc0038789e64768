// The server's default V8 heap settings, for every way the server is started (npm start, the Docker
// image's entry, the benchmarks' spawned server): README, "Memory".
//
// Without a limit V8 sizes the old generation from the machine's memory and lets garbage pile up
// (about 700 MiB of RSS at 100k resources, with a live heap near 140 MiB). A limit alone makes V8
// derive a young generation from it (a semi-space of old size / 128, 3 MiB for 384 MiB), so that each
// request's garbage is promoted and collected by full mark-compacts: the semi-space is set as well.
import { fileURLToPath } from 'node:url';

const DEFAULT_FLAGS = ['--max-old-space-size=384', '--max-semi-space-size=32'];

/** The default flags that `nodeOptions` (NODE_OPTIONS) does not set itself: it always wins. */
export function serverNodeFlags(nodeOptions = process.env.NODE_OPTIONS ?? '') {
  const given = nodeOptions.replaceAll('_', '-');
  return DEFAULT_FLAGS.filter((flag) => !given.includes(flag.split('=')[0]));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // `node scripts/server-node-flags.mjs`: the flags, for a shell (the Docker image's entry).
  console.log(serverNodeFlags().join(' '));
}
