// meds-fhir patch, copied into FerretDB's internal/handler package at build time
// (scripts/build-engine.mjs). FerretDB 1.24 answers an update, findAndModify or delete with a filter
// as a query followed by a write, with nothing in between to stop another statement from doing the
// same: two racing compare-and-sets (`updateOne({_id, v: 1}, {$set: {v: 2}})`) could both match the
// old version and both "win". Each such statement holds the lock of its collection from its query to
// the end of its write, so statements on one collection read-modify-write one after another (SQLite
// serializes their writes anyway; reads elsewhere are not held up).

package handler

import (
	"context"
	"sync"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
)

// statementLocks holds one mutex per "database\x00collection", created on first use and kept (a
// mutex per collection ever written is a few bytes each).
var statementLocks sync.Map

// lockStatement locks a collection for one read-modify-write statement and returns its unlock.
func lockStatement(db, collection string) func() {
	value, _ := statementLocks.LoadOrStore(db+"\x00"+collection, new(sync.Mutex))
	mu := value.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// lockedDelete is execDelete holding the collection's statement lock.
func (h *Handler) lockedDelete(ctx context.Context, c backends.Collection, p *common.Delete, db, collection string) (int32, error) {
	defer lockStatement(db, collection)()
	return h.execDelete(ctx, c, p)
}
