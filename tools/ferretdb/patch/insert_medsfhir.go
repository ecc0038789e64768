// meds-fhir patch, copied into FerretDB's internal/backends/sqlite package at build time
// (scripts/build-engine.mjs). Writes encode their documents before they take SQLite's write lock.
//
// FerretDB opens every write transaction with BEGIN IMMEDIATE (tools/ferretdb/main.go), which takes
// the database's one write lock at once; it then encoded each document to its stored JSON inside the
// transaction, so every other writer waited for that encoding too (an eighth of the engine's CPU on
// ingest). The statements are now built first and the transaction only executes them.

package sqlite

import (
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// preparedInsert is one INSERT statement of a batch of documents, ready to execute.
type preparedInsert struct {
	query string
	args  []any
}

// prepareInserts builds the INSERT statements of docs, batchSize documents each, as InsertAll ran them.
func prepareInserts(tableName string, capped bool, docs []*types.Document, batchSize int) ([]preparedInsert, error) {
	if batchSize < 1 {
		panic("batch-size should be greater or equal to 1")
	}

	var statements []preparedInsert

	for len(docs) > 0 {
		var batch []*types.Document

		i := min(batchSize, len(docs))
		batch, docs = docs[:i], docs[i:]

		q, args, err := prepareInsertStatement(tableName, capped, batch)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		statements = append(statements, preparedInsert{query: q, args: args})
	}

	return statements, nil
}

// preparedUpdate is the stored JSON of one replaced document and its _id as the WHERE clause compares it.
type preparedUpdate struct {
	doc string
	id  string
}

// prepareUpdates encodes the documents UpdateAll replaces, in its order.
func prepareUpdates(docs []*types.Document) ([]preparedUpdate, error) {
	updates := make([]preparedUpdate, 0, len(docs))

	for _, doc := range docs {
		b, err := sjson.Marshal(doc)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		id, _ := doc.Get("_id")
		must.NotBeZero(id)

		updates = append(updates, preparedUpdate{doc: string(b), id: string(must.NotFail(sjson.MarshalSingleValue(id)))})
	}

	return updates, nil
}
