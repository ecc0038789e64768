// meds-fhir patch, copied into FerretDB's internal/backends/sqlite package at build time
// (scripts/build-engine.mjs). A find with a sort and a limit (backends.MedsfhirOrder, set by
// internal/handler/sort_medsfhir.go) answered with only its first limit + skip matches, chosen by
// SQLite's ORDER BY and LIMIT, instead of every candidate decoded and sorted in Go.
//
// It applies when the filter is answered exactly in SQL (exactConditions of exact_medsfhir.go: a row
// that passes the tests and that medsfhir_rowcheck finds certain matches in MongoDB, and a row that
// fails them does not), and the sort keys are paths SQLite can order by as MongoDB does. The key of a
// path is medsfhir_sortkey(document, path), a value that SQLite orders as MongoDB orders the values:
// NULL when the path is missing or null (MongoDB sorts them alike, first), the number (compared as
// numbers), the string (compared by bytes), then blobs (after every text) that keep MongoDB's order of
// the types after strings and within each: an ObjectID, a boolean, a date. Any other value (an array,
// a document, a binary, a timestamp, NaN...) or a path through an array is "uncertain" (x'00').
//
// Rows are ordered with the uncertain ones (an uncertain key, or a row medsfhir_rowcheck cannot be
// sure of) first, then by the keys, then by rowid. When the first limit + skip rows hold no uncertain
// one, they are exactly the first limit + skip matches in MongoDB's order: every match is among the
// rows ordered, and every row ordered before them matches. Otherwise (or on any error) the query goes
// on as before. FerretDB then filters, sorts, skips and limits these few rows as it would all of them
// (read into memory: at most limit + skip, which the handler bounds).

package sqlite

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	sqlite3 "modernc.org/sqlite"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// uncertainKey is medsfhir_sortkey's value for a key SQLite cannot order as MongoDB does.
var uncertainKey = []byte{0}

// The first byte of the blob key of each type MongoDB sorts after strings, in its order (objects,
// arrays and binaries, which come between strings and ObjectIDs, are uncertain).
const (
	objectIDKey byte = 1 + iota
	boolKey
	dateKey
)

func init() {
	if err := sqlite3.RegisterDeterministicScalarFunction("medsfhir_sortkey", 2, sortKeySQL); err != nil {
		panic(err)
	}
}

// orderedQuery runs a find's query in order when it can (see above): its first order.Rows matches,
// and true; false when the caller must query as before. One statement chooses the rows and reads them,
// so they are one snapshot of the table, as FerretDB's own query is.
func orderedQuery(ctx context.Context, db *fsql.DB, meta *metadata.Collection, params *backends.QueryParams) (types.DocumentsIterator, bool) {
	order := backends.MedsfhirOrderFrom(ctx)
	if order == nil || order.Rows <= 0 || order.Sort.Len() == 0 || meta.Capped() || params.OnlyRecordIDs {
		return nil, false
	}
	table := meta.TableName
	doc := fmt.Sprintf("%q.%s", table, metadata.DefaultColumn)

	var keys, orderBy, uncertain []string
	for i, path := range order.Sort.Keys() {
		if !pushdownPath(path) {
			return nil, false
		}
		direction := " ASC"
		switch must.NotFail(order.Sort.Get(path)) {
		case int64(1):
		case int64(-1):
			direction = " DESC"
		default:
			return nil, false
		}
		// pushdownPath allows letters, digits, '_', '-' and '.': a safe SQL literal.
		keys = append(keys, fmt.Sprintf(`medsfhir_sortkey(%s, '%s') AS k%d`, doc, path, i))
		orderBy = append(orderBy, fmt.Sprintf(`k%d%s`, i, direction))
		uncertain = append(uncertain, fmt.Sprintf(`k%d IS x'00'`, i))
	}

	var conditions []exactCondition
	if params.Filter != nil {
		var ok bool
		if conditions, ok = exactConditions(ctx, db, table, params.Filter, nil); !ok {
			return nil, false
		}
	}
	tests, checks, post, postArgs := exactTestsAndChecks(conditions)
	where, whereArgs := composeWhere(ctx, db, table, tests)

	check := "1"
	var args []any
	if len(checks) > 0 {
		check = fmt.Sprintf(`medsfhir_rowcheck(%s, ?)`, doc)
		args = append(args, strings.Join(checks, "\n"))
	}
	args = append(args, postArgs...)
	args = append(args, whereArgs...)
	args = append(args, order.Rows)
	// MATERIALIZED: each row's check and keys are computed once, not once per use. The rows of the
	// window w are read in any order: FerretDB sorts them. A row failing the post test is out when its
	// check is certain; an uncertain one stays in the window, which sends the query back to FerretDB.
	q := fmt.Sprintf(`WITH s AS MATERIALIZED (SELECT %[1]q.rowid AS r, %[2]s AS c, %[8]s AS p, %[3]s FROM %[1]q%[4]s),
		w AS MATERIALIZED (SELECT r, (c IS 2 OR %[5]s) AS u FROM s WHERE c <> 0 AND (p OR c IS 2)
			ORDER BY u DESC, %[6]s, r LIMIT ?)
		SELECT w.u, %[1]q.%[7]s FROM w JOIN %[1]q ON %[1]q.rowid = w.r`,
		table, check, strings.Join(keys, ", "), where, strings.Join(uncertain, " OR "), strings.Join(orderBy, ", "),
		metadata.DefaultColumn, post)

	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false
	}
	defer rows.Close()
	var docs []*types.Document
	for rows.Next() {
		var u bool
		var b []byte
		if err = rows.Scan(&u, &b); err != nil || u {
			return nil, false
		}
		d, err := sjson.UnmarshalFields(b, backends.MedsfhirFieldsFrom(ctx))
		if err != nil {
			return nil, false
		}
		docs = append(docs, d)
	}
	if rows.Err() != nil {
		return nil, false
	}
	order.Pushed = true
	return iterator.Values(iterator.ForSlice(docs)), true
}

// exactTestsAndChecks are the SQL tests of exact conditions, their row checks (each once) and their post
// tests as one SQL expression ("1" when there is none) with its arguments.
func exactTestsAndChecks(conditions []exactCondition) ([]pushdownCondition, []string, string, []any) {
	var tests []pushdownCondition
	var checks, posts []string
	var postArgs []any
	seen := map[string]bool{}
	for _, c := range conditions {
		if c.test.filter != "" {
			tests = append(tests, c.test)
		}
		if c.post != "" {
			posts = append(posts, "("+c.post+")")
			postArgs = append(postArgs, c.postArgs...)
		}
		for _, check := range c.checks {
			if !seen[check] {
				seen[check] = true
				checks = append(checks, check)
			}
		}
	}
	post := "1"
	if len(posts) > 0 {
		post = strings.Join(posts, " AND ")
	}
	return tests, checks, post, postArgs
}

// sortKeySQL is medsfhir_sortkey(json, path): MongoDB's sort key of the path in a stored document, as
// a value SQLite orders the same way (NULL, a number or a text), or uncertainKey.
func sortKeySQL(_ *sqlite3.FunctionContext, args []driver.Value) (driver.Value, error) {
	var doc string
	switch v := args[0].(type) {
	case string:
		doc = v
	case []byte:
		doc = string(v)
	default:
		return uncertainKey, nil
	}
	path, _ := args[1].(string)
	return sortKey(doc, strings.Split(path, ".")), nil
}

// sortKey walks the stored document `{"$s": schema, fields...}` and its schema along path.
func sortKey(s string, path []string) driver.Value {
	at := skipSpace(s, 0)
	schema, ok := objectField(s, at, "$s")
	if !ok || schema < 0 {
		return uncertainKey
	}
	for i, segment := range path {
		props, ok := objectField(s, schema, "p")
		if !ok {
			return uncertainKey
		}
		if props < 0 {
			return nil // no fields: missing
		}
		elem, ok := objectField(s, props, segment)
		if !ok {
			return uncertainKey
		}
		if elem < 0 {
			return nil // missing
		}
		value, ok := objectField(s, at, segment)
		if !ok || value < 0 {
			return uncertainKey
		}
		t, ok := schemaType(s, elem)
		if !ok {
			return uncertainKey
		}
		last := i == len(path)-1
		switch {
		case t == "object" && !last:
			if schema, ok = objectField(s, elem, "$s"); !ok || schema < 0 {
				return uncertainKey
			}
			at = value
		case t == "array":
			return uncertainKey // MongoDB sorts by an element (the least or the greatest), or expands the path
		case !last:
			return nil // a scalar on the way: missing, in MongoDB and in FerretDB
		default:
			return scalarKey(s, value, t)
		}
	}
	return uncertainKey
}

// schemaType is the "t" of an element's schema.
func schemaType(s string, elem int) (string, bool) {
	tAt, ok := objectField(s, elem, "t")
	if !ok || tAt < 0 {
		return "", false
	}
	tEnd, ok := skipString(s, tAt)
	if !ok {
		return "", false
	}
	return unquote(s[tAt:tEnd])
}

// scalarKey is the key of the stored value at s[at] of sjson type t.
func scalarKey(s string, at int, t string) driver.Value {
	end, ok := skipValue(s, at)
	if !ok {
		return uncertainKey
	}
	text := s[at:end]
	switch t {
	case "null":
		return nil
	case "string":
		v, ok := unquote(text)
		if !ok || !pushable(v) {
			return uncertainKey
		}
		return v
	case "int", "long":
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return uncertainKey
		}
		return n
	case "double":
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return uncertainKey
		}
		return f
	case "objectId":
		// 24 lowercase hex digits: ordered as text as the 12 bytes are.
		v, ok := unquote(text)
		if !ok || len(v) != 24 || strings.ToLower(v) != v {
			return uncertainKey
		}
		return append([]byte{objectIDKey}, v...)
	case "bool":
		switch text {
		case "false":
			return []byte{boolKey, 0}
		case "true":
			return []byte{boolKey, 1}
		}
	case "date":
		ms, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return uncertainKey
		}
		// Big-endian with the sign bit flipped: ordered by bytes as the numbers are.
		key := make([]byte, 9)
		key[0] = dateKey
		binary.BigEndian.PutUint64(key[1:], uint64(ms)^(1<<63))
		return key
	}
	return uncertainKey // a binary, a regex, a timestamp, a decimal
}

// medsfhirWanted is the fields a find's Query decodes (internal/handler/fields_medsfhir.go), nil for
// all of them: for FerretDB's query_iterator.go, which the build edits to call it and which does not
// import the backends package.
func medsfhirWanted(ctx context.Context) map[string]map[string]struct{} {
	return backends.MedsfhirFieldsFrom(ctx)
}
