// meds-fhir patch, copied into FerretDB's internal/backends/sqlite package at build time
// (scripts/build-engine.mjs). A find sorted by `_id` alone (backends.MedsfhirOrder, set by
// internal/handler/sort_medsfhir.go) answered by walking FerretDB's unique `_id` index in order, a
// row at a time, instead of every candidate decoded and sorted in Go (orderedQuery of
// order_medsfhir.go computes a sort key for every candidate: O(n) per page of a keyset walk).
//
// The index is on the stored JSON text of `_id` (`_ferretdb_sjson->'_id'`, see the IDColumn edit of
// scripts/build-engine.mjs), which SQLite orders by bytes. For a string whose text is `"` + its bytes
// + `"` with every byte above `"` (0x22), that is MongoDB's order of the strings (bytes; the closing
// quote sorts below any byte that could follow, as the end of a string does). Every other `_id` is
// "odd": a type other than string (its JSON text does not tell an ObjectID from a string, and a number
// sorts after text while MongoDB puts it before), or a string with an escape (`\`), a space or a `!`
// (they sort below or around the closing quote). A partial index holds exactly the odd rows (none, in
// our server's collections), so one look-up tells whether the walk is MongoDB's order.
//
// One statement reads a sentinel row first when there is an odd row, then the rows in index order:
// one snapshot of the table. With a sentinel the query goes on as before (orderedQuery, then
// FerretDB's own). Without, the rows stream lazily and the handler skips its sort
// (MedsfhirOrder.Sorted): it still filters, skips and limits, and stops reading at the limit. The
// pre-filter is FerretDB's (pushdownWhere, a superset of the matches) with `_id` bounds on the
// index, which are exact when every `_id` is a plain string.

package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// oddIndexes are the tables (per database) whose odd-id index this process made sure of.
var oddIndexes sync.Map

// ensureOddIDIndex makes sure of the table's odd-id index once per table and process. The registry
// makes it with the table, and for older tables when the engine opens their database (oddid_medsfhir.go
// in the metadata package); this is the fallback for a table whose index went missing anyway.
func ensureOddIDIndex(ctx context.Context, db *fsql.DB, table string) bool {
	key := fmt.Sprintf("%p/%s", db, table)
	if _, ok := oddIndexes.Load(key); ok {
		return true
	}
	if err := metadata.CreateOddIDIndex(ctx, db, table); err != nil {
		return false
	}
	oddIndexes.Store(key, true)
	return true
}

// forgetOddIDIndex is called when a statement could not use the index (the table was dropped and
// made anew, say): the next query makes sure of it again.
func forgetOddIDIndex(db *fsql.DB, table string) {
	oddIndexes.Delete(fmt.Sprintf("%p/%s", db, table))
}

// plainBound tells whether a string bound compares with the index's text as MongoDB compares it
// with a plain string `_id`: `"` + its bytes + `"`, each byte above the quote.
func plainBound(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= '"' {
			return false
		}
	}
	return true
}

// idBounds are the range conditions on `_id` of the filter's top level and its `$and`s, on the index's
// text, for the bounds that are plain strings (the others are left to FerretDB's filter).
func idBounds(filter *types.Document, clauses []string, args []any) ([]string, []any) {
	if filter == nil {
		return clauses, args
	}
	for _, key := range filter.Keys() {
		value := must.NotFail(filter.Get(key))
		switch key {
		case "$and":
			parts, ok := value.(*types.Array)
			if !ok {
				continue
			}
			for i := 0; i < parts.Len(); i++ {
				if part, ok := must.NotFail(parts.Get(i)).(*types.Document); ok {
					clauses, args = idBounds(part, clauses, args)
				}
			}
		case "_id":
			ops, ok := value.(*types.Document)
			if !ok {
				continue
			}
			for _, op := range ops.Keys() {
				sqlOp, known := rangeOperators[op]
				s, isString := must.NotFail(ops.Get(op)).(string)
				if !known || !isString || !plainBound(s) {
					continue
				}
				clauses = append(clauses, fmt.Sprintf(`%s %s ?`, metadata.IDColumn, sqlOp))
				args = append(args, `"`+s+`"`)
			}
		}
	}
	return clauses, args
}

// idOrderWhere is the FROM and WHERE of the walk: FerretDB's pre-filter and the `_id` bounds. When no
// condition lets few rows through (an `_id` look-up, or a side table's condition under estimateCap
// rows), every condition tests rows that the `_id` index yields in order (INDEXED BY: SQLite would
// rather read a large driver's rows and sort them all, for every page of a keyset walk); otherwise
// the driver's few rows are read and SQLite sorts them.
func idOrderWhere(ctx context.Context, db *fsql.DB, table string, filter *types.Document) (string, string, []any) {
	conditions := pushdownConditions(ctx, db, table, filter, nil)
	walk := true
	for _, c := range conditions {
		if c.byID || (c.indexed && c.rids != "" && estimate(ctx, db, c, estimateCap) < estimateCap) {
			walk = false
			break
		}
	}
	var clauses []string
	var args []any
	from := fmt.Sprintf("%q", table)
	if walk {
		from = fmt.Sprintf("%q INDEXED BY %q", table, table+"_"+backends.DefaultIndexName)
		for _, c := range conditions {
			clauses = append(clauses, c.filter)
			args = append(args, c.filterArgs...)
		}
	} else {
		where, whereArgs := composeWhere(ctx, db, table, conditions)
		if where != "" {
			clauses = append(clauses, strings.TrimPrefix(where, " WHERE "))
			args = append(args, whereArgs...)
		}
	}
	clauses, args = idBounds(filter, clauses, args)
	if len(clauses) == 0 {
		return from, "", nil
	}
	return from, " WHERE " + strings.Join(clauses, " AND "), args
}

// idOrderedQuery answers a find sorted by `_id` alone from the `_id` index (see above), or answers
// false when the caller must query as before.
func idOrderedQuery(ctx context.Context, db *fsql.DB, meta *metadata.Collection, params *backends.QueryParams) (types.DocumentsIterator, bool) {
	order := backends.MedsfhirOrderFrom(ctx)
	if order == nil || order.Sort.Len() != 1 || order.Sort.Keys()[0] != "_id" || meta.Capped() || params.OnlyRecordIDs {
		return nil, false
	}
	direction := "ASC"
	// The sentinel's key sorts before every text in the walk's direction: NULL first, a blob last.
	sentinel := "NULL"
	switch must.NotFail(order.Sort.Get("_id")) {
	case int64(1):
	case int64(-1):
		direction, sentinel = "DESC", "x'00'"
	default:
		return nil, false
	}
	table := meta.TableName
	if !ensureOddIDIndex(ctx, db, table) {
		return nil, false
	}

	from, where, args := idOrderWhere(ctx, db, table, params.Filter)
	// INDEXED BY: the look-up must be the partial index (a statement SQLite cannot plan so fails, and
	// the query goes on as before), never a scan of the table.
	q := fmt.Sprintf(`SELECT 1 AS o, NULL AS d, %[4]s AS k WHERE EXISTS (SELECT 1 FROM %[1]q INDEXED BY %[2]q WHERE %[3]s)
		UNION ALL SELECT 0, %[1]q.%[5]s, %[1]q.%[6]s FROM %[7]s%[8]s
		ORDER BY 3 %[9]s`,
		table, metadata.OddIDIndex(table), metadata.OddIDWhere(), sentinel, metadata.DefaultColumn, metadata.IDColumn, from, where, direction)

	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		forgetOddIDIndex(db, table)
		return nil, false
	}
	iter := &idOrderIterator{ctx: ctx, rows: rows}
	if !rows.Next() {
		if rows.Err() != nil {
			rows.Close()
			return nil, false
		}
		rows.Close()
		iter.rows = nil
	} else {
		first, odd, err := scanIDOrderRow(rows, backends.MedsfhirFieldsFrom(ctx))
		if err != nil || odd {
			rows.Close()
			return nil, false
		}
		iter.first = first
	}
	order.Sorted = true
	return iter, true
}

// scanIDOrderRow is the document of the current row (its fields in keep only, nil: all), or true for the sentinel.
func scanIDOrderRow(rows *fsql.Rows, keep backends.MedsfhirFields) (*types.Document, bool, error) {
	var odd bool
	var b []byte
	var k any
	if err := rows.Scan(&odd, &b, &k); err != nil {
		return nil, false, err
	}
	if odd {
		return nil, true, nil
	}
	doc, err := sjson.UnmarshalFields(b, keep)
	return doc, false, err
}

// idOrderIterator streams the rows of idOrderedQuery: the first one, read to look for the sentinel,
// then the rest as the handler asks for them.
type idOrderIterator struct {
	ctx   context.Context
	m     sync.Mutex
	rows  *fsql.Rows
	first *types.Document
}

// Next implements iterator.Interface.
func (iter *idOrderIterator) Next() (struct{}, *types.Document, error) {
	iter.m.Lock()
	defer iter.m.Unlock()
	var unused struct{}
	if iter.first != nil {
		doc := iter.first
		iter.first = nil
		return unused, doc, nil
	}
	if iter.rows == nil {
		return unused, nil, iterator.ErrIteratorDone
	}
	if err := context.Cause(iter.ctx); err != nil {
		iter.close()
		return unused, nil, err
	}
	if !iter.rows.Next() {
		err := iter.rows.Err()
		iter.close()
		if err == nil {
			err = iterator.ErrIteratorDone
		}
		return unused, nil, err
	}
	doc, odd, err := scanIDOrderRow(iter.rows, backends.MedsfhirFieldsFrom(iter.ctx))
	if err == nil && odd {
		err = fmt.Errorf("medsfhir: a second sentinel row")
	}
	if err != nil {
		iter.close()
		return unused, nil, err
	}
	return unused, doc, nil
}

// Close implements iterator.Interface.
func (iter *idOrderIterator) Close() {
	iter.m.Lock()
	defer iter.m.Unlock()
	iter.close()
}

func (iter *idOrderIterator) close() {
	iter.first = nil
	if iter.rows != nil {
		iter.rows.Close()
		iter.rows = nil
	}
}

var _ types.DocumentsIterator = (*idOrderIterator)(nil)
