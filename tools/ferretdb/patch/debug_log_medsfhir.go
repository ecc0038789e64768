// meds-fhir patch, copied into FerretDB's internal/util/fsql package at build time
// (scripts/build-engine.mjs).

package fsql

import (
	"context"
	"log/slog"
)

// debugSQL logs a statement and its arguments at debug level. FerretDB called l.With(fields...) for
// every statement whatever the level, and slog's text handler formats With's attributes at once: each
// insert quoted its whole document twice, a sixth of the engine's CPU, for log lines nobody saw.
func debugSQL(ctx context.Context, l *slog.Logger, fields []any, direction, query string) {
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}

	l.With(fields...).DebugContext(ctx, direction+query)
}
