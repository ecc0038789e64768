// meds-fhir patch, copied into FerretDB's internal/backends/sqlite package at build time
// (scripts/build-engine.mjs). FerretDB 1.24 pushes only an exact `{_id: value}` filter down to
// SQLite; every other find, update and delete decodes each document of the collection in Go (about
// half a millisecond per document) before filtering. This pushes the string equalities of a filter
// down as a SQL pre-filter that SQLite answers from expression indexes created on first use.
//
// The pre-filter only ever lets through a superset of the matches: FerretDB still applies the whole
// filter to what SQLite returns, so a condition that is not pushed down, or a document the pre-filter
// cannot judge, costs time but never changes a result.

package sqlite

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// pushdownSegment is a path segment that can be written in a SQLite JSON path without escaping.
// Numeric segments are left out: MongoDB reads them as an array position or a field name.
var pushdownSegment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_\-]*$`)

// maxInValues bounds an `$in` pushed down as SQL parameters.
const maxInValues = 200

// arrayMarker stands for "some part of the path is an array" in the indexed expression; such a
// document matches by MongoDB's rules if any element does, which the pre-filter leaves to FerretDB.
const arrayMarker = "[array]"

// pathExpression is the SQL expression of a dotted path, as used both by the query and by the index
// (SQLite uses an expression index only for the very same expression): the string at the path; the
// element of a one-element array at the path (a resource's one Patient compartment); otherwise
// arrayMarker when the path runs through an array.
func pathExpression(path string) (string, bool) {
	segments := strings.Split(path, ".")
	column := metadata.DefaultColumn
	var guards []string
	json := "$"
	for i, segment := range segments {
		if !pushdownSegment.MatchString(segment) {
			return "", false
		}
		json += `."` + segment + `"`
		if i < len(segments)-1 {
			guards = append(guards, fmt.Sprintf(`json_type(%s, '%s') = 'array'`, column, json))
		}
	}
	prefixArray := "0"
	if len(guards) > 0 {
		prefixArray = strings.Join(guards, " OR ")
	}
	return fmt.Sprintf(`(CASE WHEN %[2]s THEN '%[3]s' `+
		`WHEN json_type(%[1]s, '%[4]s') = 'array' AND json_array_length(%[1]s, '%[4]s') = 1 THEN %[1]s->>'%[4]s[0]' `+
		`WHEN json_type(%[1]s, '%[4]s') = 'array' THEN '%[3]s' `+
		`ELSE %[1]s->>'%[4]s' END)`,
		column, prefixArray, arrayMarker, json), true
}

// pushdownCondition is one SQL condition of the pre-filter, and the expression to index for it.
type pushdownCondition struct {
	sql        string
	args       []any
	expression string
}

// stringValues are the strings a filter value equals: a string, `{$eq: string}` or `{$in: [strings]}`.
func stringValues(value any) ([]string, bool) {
	switch v := value.(type) {
	case string:
		return []string{v}, pushable(v)
	case *types.Document:
		if v.Len() != 1 {
			return nil, false
		}
		if eq, err := v.Get("$eq"); err == nil {
			s, ok := eq.(string)
			return []string{s}, ok && pushable(s)
		}
		in, err := v.Get("$in")
		if err != nil {
			return nil, false
		}
		array, ok := in.(*types.Array)
		if !ok || array.Len() == 0 || array.Len() > maxInValues {
			return nil, false
		}
		values := make([]string, 0, array.Len())
		for i := 0; i < array.Len(); i++ {
			s, ok := must.NotFail(array.Get(i)).(string)
			if !ok || !pushable(s) {
				return nil, false
			}
			values = append(values, s)
		}
		return values, true
	}
	return nil, false
}

// rangeOperators are MongoDB's comparisons and SQLite's, which agree on UTF-8 text (both compare bytes)
// and on dates (as numbers); a number at the path compares below any text in SQLite, which only lets
// more through.
var rangeOperators = map[string]string{"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}

// stringRange is the condition of `{$gt: string or date, $lt: ..., ...}`, letting arrays through.
func stringRange(expression string, value any) (string, []any, bool) {
	operators, ok := value.(*types.Document)
	if !ok || operators.Len() == 0 {
		return "", nil, false
	}
	var clauses []string
	var args []any
	for _, op := range operators.Keys() {
		sqlOp, known := rangeOperators[op]
		if !known {
			return "", nil, false
		}
		switch operand := must.NotFail(operators.Get(op)).(type) {
		case string:
			if !pushable(operand) {
				return "", nil, false
			}
			args = append(args, operand)
		case time.Time:
			// sjson stores a date as its milliseconds since the epoch; other numbers at the path compare
			// too, and text compares above any number: both only let more through.
			args = append(args, operand.UnixMilli())
		default:
			return "", nil, false
		}
		clauses = append(clauses, fmt.Sprintf("%s %s ?", expression, sqlOp))
	}
	return fmt.Sprintf("((%s) OR %s = '%s')", strings.Join(clauses, " AND "), expression, arrayMarker), args, true
}

// pushable tells whether SQLite compares the string as MongoDB does: a NUL may end SQLite's text early.
func pushable(s string) bool {
	return !strings.ContainsRune(s, 0)
}

// pushdownConditions collects the conditions of a filter's top level and of its top-level `$and`s.
func pushdownConditions(filter *types.Document, into []pushdownCondition) []pushdownCondition {
	if filter == nil {
		return into
	}
	for _, key := range filter.Keys() {
		value := must.NotFail(filter.Get(key))
		if key == "$and" {
			if parts, ok := value.(*types.Array); ok {
				for i := 0; i < parts.Len(); i++ {
					if part, ok := must.NotFail(parts.Get(i)).(*types.Document); ok {
						into = pushdownConditions(part, into)
					}
				}
			}
			continue
		}
		if key == "$or" {
			if condition, ok := anyOf(value); ok {
				into = append(into, condition)
			}
			continue
		}
		if strings.HasPrefix(key, "$") {
			continue
		}
		if key == "_id" {
			// FerretDB's own pushdown, with the expression of the _id index our main.go adds.
			switch value.(type) {
			case string, types.ObjectID:
				into = append(into, pushdownCondition{
					sql:  fmt.Sprintf(`%s = ?`, metadata.IDColumn),
					args: []any{string(must.NotFail(sjson.MarshalSingleValue(value)))},
				})
			}
			continue
		}
		expression, ok := pathExpression(key)
		if !ok {
			continue
		}
		if sql, args, ok := stringRange(expression, value); ok {
			into = append(into, pushdownCondition{sql: sql, args: args, expression: expression})
			continue
		}
		values, ok := stringValues(value)
		if !ok {
			continue
		}
		args := make([]any, len(values))
		for i, v := range values {
			args[i] = v
		}
		placeholders := strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ")
		into = append(into, pushdownCondition{
			sql:        fmt.Sprintf(`%s IN (%s, '%s')`, expression, placeholders, arrayMarker),
			args:       args,
			expression: expression,
		})
	}
	return into
}

// anyOf is the condition of an `$or` whose every branch has a condition of its own: the OR of
// supersets is a superset. One branch without any leaves the `$or` to FerretDB.
func anyOf(value any) (pushdownCondition, bool) {
	branches, ok := value.(*types.Array)
	if !ok || branches.Len() == 0 {
		return pushdownCondition{}, false
	}
	var alternatives []string
	var args []any
	for i := 0; i < branches.Len(); i++ {
		branch, ok := must.NotFail(branches.Get(i)).(*types.Document)
		if !ok {
			return pushdownCondition{}, false
		}
		conditions := pushdownConditions(branch, nil)
		if len(conditions) == 0 {
			return pushdownCondition{}, false
		}
		clauses := make([]string, 0, len(conditions))
		for _, c := range conditions {
			clauses = append(clauses, c.sql)
			args = append(args, c.args...)
		}
		alternatives = append(alternatives, "("+strings.Join(clauses, " AND ")+")")
	}
	return pushdownCondition{sql: "(" + strings.Join(alternatives, " OR ") + ")", args: args}, true
}

// pushdownWhere is the WHERE clause of the pre-filter, or "" when nothing can be pushed down.
func pushdownWhere(ctx context.Context, db *fsql.DB, table string, filter *types.Document) (string, []any) {
	conditions := pushdownConditions(filter, nil)
	if len(conditions) == 0 {
		return "", nil
	}
	clauses := make([]string, 0, len(conditions))
	var args []any
	for _, c := range conditions {
		clauses = append(clauses, c.sql)
		args = append(args, c.args...)
		if c.expression != "" {
			indexes.ensure(ctx, db, table, c.expression)
		}
	}
	return " WHERE " + strings.Join(clauses, " AND "), args
}

// pathIndexes creates an index for each path expression a query pushes down, when the query first
// uses it (that query waits for the index to be built, as the first user of an auto-index would), and
// keeps the index's statistics fresh, since SQLite chooses among several indexed conditions by them.
type pathIndexes struct {
	mu       sync.Mutex
	checked  map[string]time.Time
	analyzed map[string]time.Time
}

var indexes = &pathIndexes{checked: map[string]time.Time{}, analyzed: map[string]time.Time{}}

const (
	// recheck is how long a (table, expression) pair is trusted to have its index: a dropped and
	// re-created collection keeps its table name, and then needs the index again.
	recheck = 30 * time.Second
	// reanalyze is how often an index's statistics are recomputed as its table grows.
	reanalyze = 10 * time.Minute
)

func (p *pathIndexes) ensure(ctx context.Context, db *fsql.DB, table, expression string) {
	key := table + "\x00" + expression
	p.mu.Lock()
	last, seen := p.checked[key]
	if seen && time.Since(last) < recheck {
		p.mu.Unlock()
		return
	}
	p.checked[key] = time.Now()
	stale := time.Since(p.analyzed[key]) >= reanalyze
	if stale {
		p.analyzed[key] = time.Now()
	}
	p.mu.Unlock()

	name := fmt.Sprintf("%s_meds_%08x", table, fnv32(expression))
	var exists int
	row := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`, name)
	if err := row.Scan(&exists); err != nil {
		return
	}
	if exists > 0 {
		if stale {
			go func() {
				background, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, _ = db.ExecContext(background, fmt.Sprintf(`ANALYZE %q`, name))
			}()
		}
		return
	}
	// Errors (the table was dropped meanwhile, a busy database) are retried after recheck.
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, name, table, expression)); err != nil {
		return
	}
	_, _ = db.ExecContext(ctx, fmt.Sprintf(`ANALYZE %q`, name))
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
