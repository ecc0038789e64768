// Run by test/fault/harness.ts as a child process with an IPC channel. It holds the pids of every
// engine and server process the harness started and SIGKILLs them when the harness goes away (its
// channel disconnects, e.g. jest was killed) or after a hard lifetime, so no fault test ever leaves a
// process behind, whatever happens to the test runner.

interface WatchdogMessage {
  add?: number;
  remove?: number;
}

const lifetimeMs = Number(process.argv[2] ?? 900_000);
const pids = new Set<number>();

function killAll(): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  pids.clear();
}

process.on('message', (message: WatchdogMessage) => {
  if (message.add !== undefined) pids.add(message.add);
  if (message.remove !== undefined) pids.delete(message.remove);
});

process.on('disconnect', () => {
  killAll();
  process.exit(0);
});

// The hard bound: even a harness that hangs without exiting cannot keep children past it.
setTimeout(() => {
  killAll();
  process.exit(0);
}, lifetimeMs);
