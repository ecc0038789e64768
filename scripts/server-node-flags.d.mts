/** The server's default V8 heap flags that `nodeOptions` (default: NODE_OPTIONS) does not set itself. */
export function serverNodeFlags(nodeOptions?: string): string[];
