// meds-fhir patch, copied into FerretDB's internal/backends package at build time
// (scripts/build-engine.mjs): the hook by which the handler asks the SQLite backend for an exact count
// (internal/backends/sqlite/exact_medsfhir.go), without the handler depending on that backend.

package backends

import (
	"context"

	"github.com/FerretDB/FerretDB/internal/types"
)

// MedsfhirExactCount counts the documents of a collection that match filter (nil: all of them) when the
// backend can answer exactly what MongoDB answers; ok is false when it cannot, and the caller counts
// the documents itself. Nil when the backend has no such count.
var MedsfhirExactCount func(ctx context.Context, dbName, collName string, filter *types.Document) (n int64, ok bool, err error)
