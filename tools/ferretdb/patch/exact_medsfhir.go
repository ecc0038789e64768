// meds-fhir patch, copied into FerretDB's internal/backends/sqlite package at build time
// (scripts/build-engine.mjs). Counts answered by SQLite when, and only when, that is exactly what
// MongoDB answers: FerretDB decodes every candidate document in Go to count it (about a millisecond
// per FHIR resource).
//
// A count without a filter is `SELECT count(*)`. A count with a filter is answered here only when every
// condition of the filter (through `$and` and `$or`) is one we translate exactly (exactConditions):
// string or date equality, `$eq`, `$in` of strings, each bound of a range on a string or a date, an
// anchored literal regex (a prefix range), a top-level `{field: {$ne: true}}`, `{path: null}` and
// `{path: {$ne: null}}`, and string equality, `$in` and bounds on `_id` (the shapes of keyset paging,
// see src/search/paging.ts). Anything else (and any error)
// answers "not exact", and the handler counts as before. A condition has two parts:
//
//   - a superset test in SQL, which lets through every document MongoDB matches (the side tables of
//     paths_medsfhir.go hold every value MongoDB's path rules reach, and some more);
//   - a per-document certainty check (medsfhir_rowcheck) that tells when, for this document, the superset
//     test is exactly MongoDB's answer: along the path the stored schema shows no array directly inside
//     an array (which the side table expands and MongoDB does not) and no value whose stored JSON looks
//     like the compared type but is another (an ObjectID, binary or regex stored as text, an int, long,
//     double or timestamp stored as a number like a date); for `_id`, that it is a string; for a null
//     test, no array on the path and no boolean or document at its end (neither null nor in the side table).
//
// The count is that of the documents passing every superset test; if any of them is uncertain, the
// answer is "not exact" and FerretDB counts as before. A document that fails a superset test does not
// match in MongoDB, certain or not.

package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// exactRegistry is the registry of the SQLite backend (set by NewBackend: the engine runs one).
var exactRegistry *metadata.Registry

func init() {
	if err := sqlite3.RegisterDeterministicScalarFunction("medsfhir_rowcheck", 2, rowCheckSQL); err != nil {
		panic(err)
	}
	backends.MedsfhirExactCount = exactCount
}

// exactCondition is one condition of a filter translated exactly: a superset test (driven from a side
// table when indexed) and the certainty check it needs ("s:path" or "d:path") or the top-level
// `$ne: true` it is ("n:field", answered by medsfhir_rowcheck itself).
type exactCondition struct {
	test   pushdownCondition
	checks []string
	// post is a test of each row that is not a superset test (a `$nin`: the side table may hold more
	// values than MongoDB reaches, so it could leave out a match): it is computed beside the row check,
	// and a row failing it counts as a non-match only when the row check is certain of the row.
	post     string
	postArgs []any
}

// exactCount is the number of documents of the collection that match filter, and true, when SQLite
// answers it exactly; false when it cannot (the caller counts as before).
func exactCount(ctx context.Context, dbName, collName string, filter *types.Document) (int64, bool, error) {
	r := exactRegistry
	if r == nil {
		return 0, false, nil
	}
	db := r.DatabaseGetExisting(ctx, dbName)
	if db == nil {
		return 0, true, nil
	}
	meta := r.CollectionGet(ctx, dbName, collName)
	if meta == nil {
		return 0, true, nil
	}
	table := meta.TableName

	var conditions []exactCondition
	if filter != nil {
		var ok bool
		if conditions, ok = exactConditions(ctx, db, table, filter, nil); !ok {
			return 0, false, nil
		}
	}
	if len(conditions) == 0 {
		var n int64
		err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM %q`, table)).Scan(&n)
		return n, err == nil, err
	}

	tests, checks, post, postArgs := exactTestsAndChecks(conditions)
	where, args := composeWhere(ctx, db, table, tests)
	q := fmt.Sprintf(`SELECT count(*) FROM %q%s`, table, where)
	if len(checks) > 0 {
		// One call per row (GROUP BY computes it once): 0 does not match, 1 matches, 2 is uncertain;
		// a certain row failing the post test does not match either.
		q = fmt.Sprintf(`SELECT CASE WHEN c = 1 AND NOT p THEN 0 ELSE c END AS m, count(*)
			FROM (SELECT medsfhir_rowcheck(%q.%s, ?) AS c, %s AS p FROM %[1]q%[4]s) GROUP BY m`,
			table, metadata.DefaultColumn, post, where)
		args = append(append([]any{strings.Join(checks, "\n")}, postArgs...), args...)
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	var matched int64
	for rows.Next() {
		if len(checks) == 0 {
			if err = rows.Scan(&matched); err != nil {
				return 0, false, err
			}
			continue
		}
		var c, n int64
		if err = rows.Scan(&c, &n); err != nil {
			return 0, false, err
		}
		switch c {
		case 0:
		case 1:
			matched += n
		default:
			if n > 0 {
				return 0, false, nil
			}
		}
	}
	if err = rows.Err(); err != nil {
		return 0, false, err
	}
	return matched, true, nil
}

// exactConditions translates every condition of filter (its top level and its `$and`s), or answers
// false when one of them is not translated exactly.
func exactConditions(ctx context.Context, db *fsql.DB, table string, filter *types.Document, into []exactCondition) ([]exactCondition, bool) {
	for _, key := range filter.Keys() {
		value := must.NotFail(filter.Get(key))
		switch {
		case key == "$and":
			parts, ok := value.(*types.Array)
			if !ok || parts.Len() == 0 {
				return nil, false
			}
			for i := 0; i < parts.Len(); i++ {
				part, ok := must.NotFail(parts.Get(i)).(*types.Document)
				if !ok {
					return nil, false
				}
				if into, ok = exactConditions(ctx, db, table, part, into); !ok {
					return nil, false
				}
			}
		case key == "$or":
			condition, ok := exactAnyOf(ctx, db, table, value)
			if !ok {
				return nil, false
			}
			into = append(into, condition)
		case key == "_id":
			condition, ok := exactIDCondition(table, value)
			if !ok {
				return nil, false
			}
			into = append(into, condition)
		case !pushdownPath(key):
			// `$nor`, `$expr`…, numeric or escaped segments are left to FerretDB.
			return nil, false
		default:
			conditions, ok := exactPathConditions(ctx, db, table, key, value)
			if !ok {
				return nil, false
			}
			into = append(into, conditions...)
		}
	}
	return into, true
}

// exactAnyOf translates an `$or` whose every branch is translated exactly and tested in SQL: the OR of
// the branches' tests. A document is certain when it is certain for every branch (so each branch's test
// is exactly MongoDB's answer, and so is their OR). A `$ne: true` in a branch is left to FerretDB (its
// check answers "no match" for the whole document, which a branch cannot).
func exactAnyOf(ctx context.Context, db *fsql.DB, table string, value any) (exactCondition, bool) {
	branches, ok := value.(*types.Array)
	if !ok || branches.Len() == 0 {
		return exactCondition{}, false
	}
	var filters, selects, checks []string
	var filterArgs, selectArgs []any
	drivable := true
	for i := 0; i < branches.Len(); i++ {
		branch, ok := must.NotFail(branches.Get(i)).(*types.Document)
		if !ok {
			return exactCondition{}, false
		}
		conditions, ok := exactConditions(ctx, db, table, branch, nil)
		if !ok || len(conditions) == 0 {
			return exactCondition{}, false
		}
		clauses := make([]string, 0, len(conditions))
		for _, c := range conditions {
			if c.test.filter == "" {
				return exactCondition{}, false
			}
			clauses = append(clauses, c.test.filter)
			filterArgs = append(filterArgs, c.test.filterArgs...)
			checks = append(checks, c.checks...)
		}
		filters = append(filters, "("+strings.Join(clauses, " AND ")+")")
		// A branch drives by the row ids of its first condition (a superset of the branch's matches).
		if conditions[0].test.rids == "" {
			drivable = false
			continue
		}
		selects = append(selects, conditions[0].test.rids)
		selectArgs = append(selectArgs, conditions[0].test.ridArgs...)
	}
	test := pushdownCondition{filter: "(" + strings.Join(filters, " OR ") + ")", filterArgs: filterArgs, loose: true}
	if drivable {
		test.rids = strings.Join(selects, " UNION ")
		test.ridArgs = selectArgs
	}
	return exactCondition{test: test, checks: checks}, true
}

// exactPathConditions translates the condition on one path: a string (equality), an anchored literal
// regex (a prefix), or a document of operators that are all $eq (string), $in (strings), ranges on a
// string or a date, $regex (anchored literal) or, on a top-level field, `$ne: true`.
func exactPathConditions(ctx context.Context, db *fsql.DB, table, path string, value any) ([]exactCondition, bool) {
	if doc, ok := value.(*types.Document); ok && doc.Len() == 1 && !strings.Contains(path, ".") {
		if operand, err := doc.Get("$ne"); err == nil && operand == true {
			// No SQL test: medsfhir_rowcheck answers 0 for a document where the field is true.
			return []exactCondition{{checks: []string{"n:" + path}}}, true
		}
	}
	side := paths.readySide(ctx, db, table, path)
	if side == "" {
		return nil, false
	}
	text := func(where string, args ...any) exactCondition {
		return exactCondition{test: sideCondition(table, side, `typeof(v) = 'text' AND `+where, args), checks: []string{"s:" + path}}
	}
	date := func(where string, ms int64) exactCondition {
		return exactCondition{
			test:   sideCondition(table, side, `typeof(v) = 'integer' AND `+where, []any{ms}),
			checks: []string{"d:" + path},
		}
	}
	// `{path: null}` (missing or null) and `{path: {$ne: null}}`, as keyset paging sends them: the side
	// table holds no row for the document, or one. Certain where no array is on the path and the value
	// is not one the side table leaves out and that is not null either (a boolean, a document).
	hasValue := fmt.Sprintf(`EXISTS (SELECT 1 FROM %q WHERE rid = %q.rowid)`, side, table)
	nullCheck := []string{"v:" + path}
	if doc, ok := value.(*types.Document); ok && doc.Len() == 1 {
		if operand, err := doc.Get("$ne"); err == nil && operand == types.Null {
			return []exactCondition{{test: pushdownCondition{filter: hasValue}, checks: nullCheck}}, true
		}
	}
	switch v := value.(type) {
	case types.NullType:
		return []exactCondition{{test: pushdownCondition{filter: "NOT " + hasValue}, checks: nullCheck}}, true
	case time.Time:
		return []exactCondition{date(`v = ?`, v.UnixMilli())}, true
	case string:
		if !pushable(v) {
			return nil, false
		}
		return []exactCondition{text(`v = ?`, v)}, true
	case types.Regex:
		c, ok := exactRegex(text, v.Pattern, v.Options)
		return []exactCondition{c}, ok
	case *types.Document:
		if v.Len() == 0 {
			return nil, false
		}
		if operand, err := v.Get("$nin"); err == nil {
			if v.Len() != 1 {
				return nil, false
			}
			return exactNin(table, side, path, operand)
		}
		var out []exactCondition
		if pattern, err := v.Get("$regex"); err == nil {
			options := ""
			if o, err := v.Get("$options"); err == nil {
				s, ok := o.(string)
				if !ok {
					return nil, false
				}
				options = s
			}
			var c exactCondition
			var ok bool
			switch p := pattern.(type) {
			case string:
				c, ok = exactRegex(text, p, options)
			case types.Regex:
				if _, err := v.Get("$options"); err == nil && p.Options != "" {
					return nil, false
				}
				c, ok = exactRegex(text, p.Pattern, options+p.Options)
			}
			if !ok {
				return nil, false
			}
			out = append(out, c)
		}
		for _, op := range v.Keys() {
			operand := must.NotFail(v.Get(op))
			switch op {
			case "$regex", "$options":
			case "$eq":
				if t, ok := operand.(time.Time); ok {
					out = append(out, date(`v = ?`, t.UnixMilli()))
					continue
				}
				s, ok := operand.(string)
				if !ok || !pushable(s) {
					return nil, false
				}
				out = append(out, text(`v = ?`, s))
			case "$in":
				list, args, ok := exactStringList(operand)
				if !ok {
					return nil, false
				}
				out = append(out, exactCondition{
					test:   inCondition(table, side, `typeof(v) = 'text' AND `, list, args),
					checks: []string{"s:" + path},
				})
			default:
				sqlOp, known := rangeOperators[op]
				if !known {
					return nil, false
				}
				// Each bound on its own: MongoDB lets different elements satisfy different bounds.
				switch b := operand.(type) {
				case string:
					if !pushable(b) {
						return nil, false
					}
					c := text("v "+sqlOp+" ?", b)
					c.test.rank = 2
					out = append(out, c)
				case time.Time:
					c := date(`v `+sqlOp+` ?`, b.UnixMilli())
					c.test.rank = 2
					out = append(out, c)
				default:
					return nil, false
				}
			}
		}
		return out, len(out) > 0
	}
	return nil, false
}

// exactStringList is the SQL list (inList) of an `$in` or `$nin` operand made only of strings SQLite
// compares as MongoDB does; false for anything else.
func exactStringList(operand any) (string, []any, bool) {
	array, ok := operand.(*types.Array)
	if !ok || array.Len() == 0 || array.Len() > maxInValues {
		return "", nil, false
	}
	values := make([]any, 0, array.Len())
	for i := 0; i < array.Len(); i++ {
		s, ok := must.NotFail(array.Get(i)).(string)
		if !ok || !pushable(s) {
			return "", nil, false
		}
		values = append(values, s)
	}
	return inList(values)
}

// exactNin is `{path: {$nin: [strings]}}`: no string at the path is one of them (a document without
// the path matches). Exact for a row whose side table holds exactly MongoDB's strings (the "s:" check);
// a row it is not sure of is answered as uncertain, whatever the test says.
func exactNin(table, side, path string, operand any) ([]exactCondition, bool) {
	list, args, ok := exactStringList(operand)
	if !ok {
		return nil, false
	}
	post := fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM %q WHERE rid = %q.rowid AND typeof(v) = 'text' AND +v IN %s)`,
		side, table, list)
	return []exactCondition{{checks: []string{"s:" + path}, post: post, postArgs: args}}, true
}

// exactRegex is the condition of a regex that is exactly "starts with this text": `^` and literal
// characters only, no options.
func exactRegex(text func(string, ...any) exactCondition, pattern, options string) (exactCondition, bool) {
	prefix, ok := literalRegex(pattern, options)
	if !ok || !pushable(prefix) {
		return exactCondition{}, false
	}
	end := prefixEnd(prefix)
	if end == "" {
		return exactCondition{}, false
	}
	c := text(`v >= ? AND v < ?`, prefix, end)
	c.test.rank = 1
	return c, true
}

// literalRegex is the text of a regex `^literal` with nothing else in it (an escaped punctuation mark
// is itself), and whether it is one.
func literalRegex(pattern, options string) (string, bool) {
	if options != "" || !strings.HasPrefix(pattern, "^") || len(pattern) < 2 {
		return "", false
	}
	var prefix []byte
	body := pattern[1:]
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\\':
			if i+1 >= len(body) || strings.IndexByte(`.[]()^$*+?{}|\/-`, body[i+1]) < 0 {
				return "", false
			}
			i++
			prefix = append(prefix, body[i])
		case strings.IndexByte(`.[]()^$*+?{}|`, c) >= 0:
			return "", false
		default:
			prefix = append(prefix, c)
		}
	}
	return string(prefix), true
}

// rowCheckSQL is medsfhir_rowcheck(json, checks): 0 when the document certainly fails a `$ne: true`
// check, 2 when a check cannot be sure of it, else 1. Checks are lines: "s:path" (the side table of path
// holds exactly MongoDB's string values), "d:path" (exactly its dates), "n:field" (`{field: {$ne: true}}`).
func rowCheckSQL(_ *sqlite3.FunctionContext, args []driver.Value) (driver.Value, error) {
	var doc string
	switch v := args[0].(type) {
	case string:
		doc = v
	case []byte:
		doc = string(v)
	default:
		return int64(2), nil
	}
	spec, _ := args[1].(string)
	result := int64(1)
	for _, check := range strings.Split(spec, "\n") {
		if len(check) < 3 || check[1] != ':' {
			return int64(2), nil
		}
		kind, path := check[0], check[2:]
		switch kind {
		case 'n':
			if !strings.Contains(doc, `"`+path+`"`) {
				// No such key anywhere in the text (a plain name is written as is): missing, which
				// `$ne: true` matches. Most documents have no `deleted`, and this spares reading them.
				continue
			}
			switch topValueKind(doc, path) {
			case 't':
				result = 0
			case '[', '?':
				if result != 0 {
					result = 2
				}
			}
		case 's', 'd':
			if !certainPath(doc, strings.Split(path, "."), kind) && result != 0 {
				result = 2
			}
		case 'i':
			if t, ok := topSchemaType(doc, path); (!ok || t != "string") && result != 0 {
				result = 2
			}
		case 'v':
			if !certainNullable(doc, strings.Split(path, ".")) && result != 0 {
				result = 2
			}
		default:
			return int64(2), nil
		}
	}
	return result, nil
}

// topValueKind is the first byte of the stored JSON of a top-level field ('t' for true, '[' for an
// array), 0 when the field is missing, '?' when the text cannot be read.
func topValueKind(s, field string) byte {
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return '?'
	}
	at, ok := objectField(s, i, field)
	if !ok {
		return '?'
	}
	if at < 0 {
		return 0
	}
	return s[at]
}

// objectField is the position of the value of key in the JSON object at s[i], -1 when it has none;
// false when the text cannot be read.
func objectField(s string, i int, key string) (int, bool) {
	if i >= len(s) || s[i] != '{' {
		return 0, false
	}
	i = skipSpace(s, i+1)
	for i < len(s) && s[i] != '}' {
		k, at, ok := memberKey(s, i)
		if !ok {
			return 0, false
		}
		if k == key {
			return at, true
		}
		if i, ok = nextItem(s, at); !ok {
			return 0, false
		}
	}
	if i >= len(s) {
		return 0, false
	}
	return -1, true
}

// certainPath tells whether, in the document s (FerretDB's stored JSON: `{"$s": schema, fields...}`),
// the values that the side table of path holds are exactly those MongoDB reaches, of the kind compared
// ('s': strings, 'd': dates). It walks the stored schema, which tells each value's type.
func certainPath(s string, path []string, kind byte) bool {
	at, ok := objectField(s, skipSpace(s, 0), "$s")
	if !ok || at < 0 {
		return false
	}
	return certainSchema(s, at, path, kind)
}

// certainSchema walks a schema `{"p": {field: elem, ...}, "$k": [...]}` (`{}` when empty).
func certainSchema(s string, at int, path []string, kind byte) bool {
	props, ok := objectField(s, at, "p")
	if !ok {
		return false
	}
	if props < 0 {
		return true // no fields
	}
	elem, ok := objectField(s, props, path[0])
	if !ok {
		return false
	}
	if elem < 0 {
		return true // missing: no values, none in MongoDB
	}
	return certainElem(s, elem, path[1:], kind, false)
}

// certainElem walks an element's schema `{"t": type, "$s": ..., "i": [...]}`.
func certainElem(s string, at int, rest []string, kind byte, inArray bool) bool {
	tAt, ok := objectField(s, at, "t")
	if !ok || tAt < 0 {
		return false
	}
	tEnd, ok := skipString(s, tAt)
	if !ok {
		return false
	}
	t, ok := unquote(s[tAt:tEnd])
	if !ok {
		return false
	}
	switch t {
	case "array":
		if inArray {
			return false // an array in an array: the side table expands it, MongoDB does not
		}
		items, ok := objectField(s, at, "i")
		if !ok {
			return false
		}
		if items < 0 {
			return true // empty
		}
		if s[items] != '[' {
			return false
		}
		i := skipSpace(s, items+1)
		for i < len(s) && s[i] != ']' {
			if !certainElem(s, i, rest, kind, true) {
				return false
			}
			if i, ok = nextItem(s, i); !ok {
				return false
			}
		}
		return i < len(s)
	case "object":
		if len(rest) == 0 {
			return true // a document holds no value for the side table, and equals no string or date
		}
		sub, ok := objectField(s, at, "$s")
		if !ok || sub < 0 {
			return false
		}
		return certainSchema(s, sub, rest, kind)
	}
	if len(rest) > 0 {
		return true // a scalar on the way: nothing reached, in both
	}
	switch kind {
	case 's':
		// Stored as JSON text like a string, but not one.
		return t != "objectId" && t != "binData" && t != "regex"
	case 'd':
		// Stored as a JSON number like a date, but not one.
		return t != "double" && t != "int" && t != "long" && t != "timestamp"
	}
	return false
}

// exactIDCondition translates a condition on `_id` when it is a string: equality, `$in` of strings (by
// the _id index, as FerretDB's own pushdown) or each bound of a range on a string (on the stored text).
// The stored text does not tell a string from an ObjectID, so each row's `_id` must be a string ("i:_id").
func exactIDCondition(table string, value any) (exactCondition, bool) {
	checks := []string{"i:_id"}
	if s, ok := value.(string); ok && pushable(s) {
		condition, ok := idCondition(s)
		return exactCondition{test: condition, checks: checks}, ok
	}
	doc, ok := value.(*types.Document)
	if !ok || doc.Len() == 0 {
		return exactCondition{}, false
	}
	if _, err := doc.Get("$in"); err == nil {
		if doc.Len() != 1 {
			return exactCondition{}, false
		}
		array, ok := must.NotFail(doc.Get("$in")).(*types.Array)
		if !ok {
			return exactCondition{}, false
		}
		for i := 0; i < array.Len(); i++ {
			if s, ok := must.NotFail(array.Get(i)).(string); !ok || !pushable(s) {
				return exactCondition{}, false
			}
		}
		condition, ok := idCondition(doc)
		return exactCondition{test: condition, checks: checks}, ok
	}
	id := fmt.Sprintf(`%q.%s->>'$._id'`, table, metadata.DefaultColumn)
	var clauses []string
	var args []any
	for _, op := range doc.Keys() {
		sqlOp, known := rangeOperators[op]
		s, isString := must.NotFail(doc.Get(op)).(string)
		if !known || !isString || !pushable(s) {
			return exactCondition{}, false
		}
		clauses = append(clauses, fmt.Sprintf(`typeof(%s) = 'text' AND %[1]s %s ?`, id, sqlOp))
		args = append(args, s)
	}
	test := pushdownCondition{filter: "(" + strings.Join(clauses, " AND ") + ")", filterArgs: args}
	return exactCondition{test: test, checks: checks}, true
}

// topSchemaType is the stored type of a top-level field ("" when it is missing).
func topSchemaType(s, field string) (string, bool) {
	schema, ok := objectField(s, skipSpace(s, 0), "$s")
	if !ok || schema < 0 {
		return "", false
	}
	props, ok := objectField(s, schema, "p")
	if !ok || props < 0 {
		return "", ok
	}
	elem, ok := objectField(s, props, field)
	if !ok || elem < 0 {
		return "", ok
	}
	return schemaType(s, elem)
}

// certainNullable tells whether, in the stored document s, "the side table of path holds no row" is
// exactly MongoDB's `{path: null}`: no array on the way, and at the end nothing that is neither null
// nor held by the side table (a boolean, a document).
func certainNullable(s string, path []string) bool {
	schema, ok := objectField(s, skipSpace(s, 0), "$s")
	if !ok || schema < 0 {
		return false
	}
	for i, segment := range path {
		props, ok := objectField(s, schema, "p")
		if !ok {
			return false
		}
		if props < 0 {
			return true // missing
		}
		elem, ok := objectField(s, props, segment)
		if !ok {
			return false
		}
		if elem < 0 {
			return true // missing
		}
		t, ok := schemaType(s, elem)
		if !ok {
			return false
		}
		last := i == len(path)-1
		switch {
		case t == "array":
			return false
		case t == "object" && !last:
			if schema, ok = objectField(s, elem, "$s"); !ok || schema < 0 {
				return false
			}
		case t == "object" || t == "bool":
			return false
		default:
			return true // a scalar on the way (missing, in MongoDB and in the side table) or at the end
		}
	}
	return false
}
