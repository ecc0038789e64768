// meds-fhir patch, copied into FerretDB's internal/backends/sqlite package at build time
// (scripts/build-engine.mjs). FerretDB 1.24 pushes only an exact `{_id: value}` filter down to
// SQLite; every other find, update and delete decodes each document of the collection in Go (about
// half a millisecond per document) before filtering. This pushes the string and date conditions of a
// filter down as a SQL pre-filter answered from the multikey side tables of paths_medsfhir.go.
//
// The pre-filter only ever lets through a superset of the matches: FerretDB still applies the whole
// filter to what SQLite returns, so a condition that is not pushed down (no complete side table yet,
// an operator we do not translate) costs time but never changes a result.

package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// pushdownSegment is a path segment that is indexed and queried without escaping. Numeric segments are
// left out: MongoDB reads them as an array position or a field name.
var pushdownSegment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_\-]*$`)

func pushdownPath(path string) bool {
	for _, segment := range strings.Split(path, ".") {
		if !pushdownSegment.MatchString(segment) {
			return false
		}
	}
	return path != ""
}

// maxInValues bounds an `$in` pushed down. A practitioner's reach (the compartments of every patient
// of their care teams, capped at 20,000 by the server) is one such `$in` on every search they make.
const maxInValues = 50000

// inlineInValues is the longest `$in` list written as SQL parameters; a longer one goes to SQLite as
// one JSON array, read by json_each: one parameter whatever its length (SQLite allows 32,766 in a
// statement), and SQLite makes its ephemeral index of the values once per statement.
const inlineInValues = 100

// inList is the right-hand side of `x IN ...` for values (strings), with its arguments; false when the
// list cannot go to SQLite as JSON (a string that is not valid UTF-8 would not survive the encoding).
func inList(values []any) (string, []any, bool) {
	if len(values) <= inlineInValues {
		return "(" + strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ") + ")", values, true
	}
	for _, v := range values {
		if !utf8.ValidString(v.(string)) {
			return "", nil, false
		}
	}
	list, err := json.Marshal(values)
	if err != nil {
		return "", nil, false
	}
	return "(SELECT value FROM json_each(?))", []any{string(list)}, true
}

// estimateCap bounds the rows counted to choose which condition drives a query.
const estimateCap = 2000

// tieCap bounds the second count of the conditions that all reached estimateCap: at scale a code shared
// by a third of a type's rows and a month of its dates both pass 2,000, and only counting further tells
// which of them is the smaller driver.
const tieCap = 32000

// pushdownCondition is one condition of the pre-filter, in two forms: the row ids that may match (a
// SELECT, to drive the query from an index) and a test of one row (to filter the driver's rows).
type pushdownCondition struct {
	rids       string
	ridArgs    []any
	filter     string
	filterArgs []any
	// indexed tells that rids come from a side table, so counting them estimates the condition.
	indexed bool
	// rank breaks ties between estimates (both at estimateCap, at scale): an equality (0) before a
	// prefix or two-sided range (1) before a one-sided range (2), which may span the whole table.
	rank int
	// byID is the `_id` condition, answered by the _id index (tools/ferretdb/main.go): it always drives.
	byID bool
	// loose tells that rids let through more rows than filter does, so a driver's filter still applies
	// (an exact `$or` of exact_medsfhir.go, driven by the first condition of each branch).
	loose bool
	// countRids, when set, is what the estimate counts instead of rids: a UNION ALL of an `$or`'s branches
	// counts a row in two branches twice (an estimate may be high) without SQLite's sort for distinct rows.
	countRids string
	// long tells that rids come from a long `$in` list: estimating it costs a seek per value, so it is
	// estimated only when no other condition is already selective (at most selectiveRows).
	long bool
}

// selectiveRows is an estimate small enough that driving by it is cheap whatever the other conditions.
const selectiveRows = 100

// sideCondition is `where` (on the side table's column v) as a pushdown condition on table.
func sideCondition(table, side, where string, args []any) pushdownCondition {
	return pushdownCondition{
		rids:       fmt.Sprintf(`SELECT rid FROM %q WHERE %s`, side, where),
		ridArgs:    args,
		filter:     fmt.Sprintf(`EXISTS (SELECT 1 FROM %q WHERE rid = %q.rowid AND (%s))`, side, table, where),
		filterArgs: args,
		indexed:    true,
	}
}

// inCondition is `v IN list` (after typeTest, "" or a test of v ending in AND) on table's side table.
// As row ids, a seek per value of the list. As a test of one row, the row's own values (found by the
// rid index) are looked up in the list, which SQLite makes into a table once per statement: left to
// itself it seeks every value of the list for each row (`+v` keeps it off the (v, rid) key), which for
// a practitioner's thousands of compartments cost thousands of seeks per row.
func inCondition(table, side, typeTest, list string, args []any) pushdownCondition {
	c := sideCondition(table, side, typeTest+`v IN `+list, args)
	c.long = strings.HasPrefix(list, "(SELECT")
	c.filter = fmt.Sprintf(`EXISTS (SELECT 1 FROM %q WHERE rid = %q.rowid AND (%s+v IN %s))`, side, table, typeTest, list)
	return c
}

// rangeOperators are MongoDB's comparisons and SQLite's, which agree on UTF-8 text (both compare bytes)
// and on dates (sjson stores milliseconds since the epoch); SQLite orders numbers below text and text
// below blobs, and MongoDB compares only within a type, so a bound never lets a wrong type through.
var rangeOperators = map[string]string{"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}

// pushable tells whether SQLite compares the string as MongoDB does: a NUL may end SQLite's text early.
func pushable(s string) bool {
	return !strings.ContainsRune(s, 0)
}

// literalPrefix is the text every match of an anchored regex starts with ("" when there is none we
// can be sure of): `^riv` gives "riv", `^a\.b` gives "a.b", `^ab*` gives "a". A `|` anywhere, an
// option (i, m, x, s) or a character class stops us from being sure.
func literalPrefix(pattern, options string) string {
	if options != "" || !strings.HasPrefix(pattern, "^") || strings.Contains(pattern, "|") {
		return ""
	}
	var prefix []byte
	body := pattern[1:]
	for i := 0; i < len(body); i++ {
		c := body[i]
		var literal byte
		switch {
		case c == '\\':
			if i+1 >= len(body) {
				return ""
			}
			next := body[i+1]
			// An escaped punctuation mark is itself; `\d`, `\w`, `\Q` and the like are not literals.
			if (next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || (next >= '0' && next <= '9') {
				return string(prefix)
			}
			literal = next
			i++
		case strings.IndexByte(`.[]()^$*+?{}`, c) >= 0:
			return string(prefix)
		default:
			literal = c
		}
		// A quantifier after the literal may repeat it zero times: it is not part of every match.
		if i+1 < len(body) && strings.IndexByte(`*?{`, body[i+1]) >= 0 {
			return string(prefix)
		}
		prefix = append(prefix, literal)
	}
	return string(prefix)
}

// prefixEnd is the smallest text above every text that starts with prefix, comparing bytes (as both
// SQLite's BINARY collation and MongoDB do); "" when there is none.
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for len(b) > 0 && b[len(b)-1] == 0xff {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return ""
	}
	b[len(b)-1]++
	return string(b)
}

// pathConditions translates the condition on one indexed path: a value (equality), or a document of
// operators, of which $eq, $in, the ranges and anchored $regex are pushed down; other operators are
// left to FerretDB (leaving out a conjunct only lets more through).
func pathConditions(table, side string, value any) []pushdownCondition {
	switch v := value.(type) {
	case string:
		if !pushable(v) {
			return nil
		}
		return []pushdownCondition{sideCondition(table, side, `v = ?`, []any{v})}
	case types.Regex:
		return regexCondition(table, side, v.Pattern, v.Options)
	case *types.Document:
		// {$regex: "...", $options: "..."} is one operator.
		if pattern, err := v.Get("$regex"); err == nil {
			options := ""
			if o, err := v.Get("$options"); err == nil {
				options, _ = o.(string)
			}
			var out []pushdownCondition
			switch p := pattern.(type) {
			case string:
				out = regexCondition(table, side, p, options)
			case types.Regex:
				if options == "" {
					options = p.Options
				}
				out = regexCondition(table, side, p.Pattern, options)
			}
			return append(out, operatorConditions(table, side, v)...)
		}
		return operatorConditions(table, side, v)
	}
	return nil
}

func regexCondition(table, side, pattern, options string) []pushdownCondition {
	prefix := literalPrefix(pattern, options)
	if prefix == "" || !pushable(prefix) {
		return nil
	}
	// One element must carry the prefix, so both bounds apply to one value (no marker needed).
	if end := prefixEnd(prefix); end != "" {
		c := sideCondition(table, side, `v >= ? AND v < ?`, []any{prefix, end})
		c.rank = 1
		return []pushdownCondition{c}
	}
	c := sideCondition(table, side, `v >= ?`, []any{prefix})
	c.rank = 2
	return []pushdownCondition{c}
}

// operatorConditions handles $eq, $in and the ranges of one path's operator document.
func operatorConditions(table, side string, operators *types.Document) []pushdownCondition {
	var out []pushdownCondition
	var bounds []string
	var boundArgs []any
	for _, op := range operators.Keys() {
		operand := must.NotFail(operators.Get(op))
		switch op {
		case "$eq":
			if s, ok := operand.(string); ok && pushable(s) {
				out = append(out, sideCondition(table, side, `v = ?`, []any{s}))
			}
		case "$in":
			array, ok := operand.(*types.Array)
			if !ok || array.Len() == 0 || array.Len() > maxInValues {
				continue
			}
			values := make([]any, 0, array.Len())
			for i := 0; i < array.Len(); i++ {
				s, ok := must.NotFail(array.Get(i)).(string)
				if !ok || !pushable(s) {
					values = nil
					break
				}
				values = append(values, s)
			}
			if values == nil {
				continue
			}
			if list, args, ok := inList(values); ok {
				out = append(out, inCondition(table, side, "", list, args))
			}
		default:
			sqlOp, known := rangeOperators[op]
			if !known {
				continue
			}
			switch b := operand.(type) {
			case string:
				if !pushable(b) {
					continue
				}
				boundArgs = append(boundArgs, b)
			case time.Time:
				boundArgs = append(boundArgs, b.UnixMilli())
			default:
				continue
			}
			bounds = append(bounds, "v "+sqlOp+" ?")
		}
	}
	switch {
	case len(bounds) == 1:
		c := sideCondition(table, side, bounds[0], boundArgs)
		c.rank = 2
		out = append(out, c)
	case len(bounds) > 1:
		// MongoDB lets two elements of an array satisfy the two bounds, so a row with several values
		// (its marker row) passes whatever the bounds. As row ids, a UNION: SQLite searches the primary
		// key for each part, where it would scan for the OR.
		where := fmt.Sprintf(`(%s) OR v = %s`, strings.Join(bounds, " AND "), multiMarker)
		c := sideCondition(table, side, where, boundArgs)
		c.rank = 1
		c.rids = fmt.Sprintf(`SELECT rid FROM %q WHERE %s UNION SELECT rid FROM %[1]q WHERE v = %[3]s`,
			side, strings.Join(bounds, " AND "), multiMarker)
		out = append(out, c)
	}
	return out
}

// pushdownConditions collects the conditions of a filter's top level and of its top-level `$and`s.
func pushdownConditions(ctx context.Context, db *fsql.DB, table string, filter *types.Document, into []pushdownCondition) []pushdownCondition {
	if filter == nil {
		return into
	}
	for _, key := range filter.Keys() {
		value := must.NotFail(filter.Get(key))
		switch {
		case key == "$and":
			if parts, ok := value.(*types.Array); ok {
				for i := 0; i < parts.Len(); i++ {
					if part, ok := must.NotFail(parts.Get(i)).(*types.Document); ok {
						into = pushdownConditions(ctx, db, table, part, into)
					}
				}
			}
		case key == "$or":
			if condition, ok := anyOf(ctx, db, table, value); ok {
				into = append(into, condition)
			}
		case strings.HasPrefix(key, "$"):
		case key == "_id":
			if condition, ok := idCondition(value); ok {
				into = append(into, condition)
			}
		case pushdownPath(key):
			side := paths.readySide(ctx, db, table, key)
			if side != "" {
				into = append(into, pathConditions(table, side, value)...)
			}
		}
	}
	return into
}

// idCondition is FerretDB's own pushdown of `{_id: value}`, and `{_id: {$in: [...]}}` (includes and
// reference checks), on the expression of the _id index our main.go adds.
func idCondition(value any) (pushdownCondition, bool) {
	id := func(v any) (string, bool) {
		switch v.(type) {
		case string, types.ObjectID:
			return string(must.NotFail(sjson.MarshalSingleValue(v))), true
		}
		return "", false
	}
	if s, ok := id(value); ok {
		where := fmt.Sprintf(`%s = ?`, metadata.IDColumn)
		return pushdownCondition{filter: where, filterArgs: []any{s}, byID: true}, true
	}
	doc, ok := value.(*types.Document)
	if !ok || doc.Len() != 1 {
		return pushdownCondition{}, false
	}
	in, err := doc.Get("$in")
	if err != nil {
		return pushdownCondition{}, false
	}
	array, ok := in.(*types.Array)
	if !ok || array.Len() == 0 || array.Len() > maxInValues {
		return pushdownCondition{}, false
	}
	args := make([]any, array.Len())
	for i := range args {
		s, ok := id(must.NotFail(array.Get(i)))
		if !ok {
			return pushdownCondition{}, false
		}
		args[i] = s
	}
	list, listArgs, ok := inList(args)
	if !ok {
		return pushdownCondition{}, false
	}
	return pushdownCondition{filter: fmt.Sprintf(`%s IN %s`, metadata.IDColumn, list), filterArgs: listArgs, byID: true}, true
}

// anyOf is the condition of an `$or` whose every branch has a condition of its own: the OR of
// supersets is a superset. One branch without any leaves the `$or` to FerretDB.
func anyOf(ctx context.Context, db *fsql.DB, table string, value any) (pushdownCondition, bool) {
	branches, ok := value.(*types.Array)
	if !ok || branches.Len() == 0 {
		return pushdownCondition{}, false
	}
	var filters, selects []string
	var filterArgs, selectArgs []any
	drivable := true
	for i := 0; i < branches.Len(); i++ {
		branch, ok := must.NotFail(branches.Get(i)).(*types.Document)
		if !ok {
			return pushdownCondition{}, false
		}
		conditions := pushdownConditions(ctx, db, table, branch, nil)
		if len(conditions) == 0 {
			return pushdownCondition{}, false
		}
		clauses := make([]string, 0, len(conditions))
		for _, c := range conditions {
			clauses = append(clauses, c.filter)
			filterArgs = append(filterArgs, c.filterArgs...)
		}
		filters = append(filters, "("+strings.Join(clauses, " AND ")+")")
		// A branch drives by the row ids of its first indexed condition (the others filter).
		if conditions[0].rids == "" {
			drivable = false
			continue
		}
		selects = append(selects, conditions[0].rids)
		selectArgs = append(selectArgs, conditions[0].ridArgs...)
	}
	condition := pushdownCondition{filter: "(" + strings.Join(filters, " OR ") + ")", filterArgs: filterArgs}
	if drivable {
		condition.rids = strings.Join(selects, " UNION ")
		condition.ridArgs = selectArgs
		// Each branch's rows come from a side table, so their count estimates the `$or` as a driver (a
		// date range split into bounded branches, see the server's compile/date-ranges.ts).
		condition.indexed = true
		condition.rank = 1
		condition.countRids = strings.Join(selects, " UNION ALL ")
	}
	return condition, true
}

// estimate counts the rows a condition lets through, up to limit (estimateCap + 1 when it cannot tell).
func estimate(ctx context.Context, db *fsql.DB, c pushdownCondition, limit int) int {
	if !c.indexed {
		return estimateCap + 1
	}
	rids := c.rids
	if c.countRids != "" {
		rids = c.countRids
	}
	var n int
	q := fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM (%s) LIMIT %d)`, rids, limit)
	if err := db.QueryRowContext(ctx, q, c.ridArgs...).Scan(&n); err != nil {
		return estimateCap + 1
	}
	return n
}

// pushdownWhere is the WHERE clause of the pre-filter, or "" when nothing can be pushed down. One
// condition drives (the rows of its side table, by rowid); the others test each of those rows. The
// driver is the `_id` condition if any, else the indexed condition that lets the fewest rows through.
func pushdownWhere(ctx context.Context, db *fsql.DB, table string, filter *types.Document) (string, []any) {
	return composeWhere(ctx, db, table, pushdownConditions(ctx, db, table, filter, nil))
}

// composeWhere is the WHERE clause of the conjunction of conditions ("" for none): one drives, the
// others test each of its rows.
func composeWhere(ctx context.Context, db *fsql.DB, table string, conditions []pushdownCondition) (string, []any) {
	if len(conditions) == 0 {
		return "", nil
	}
	driver := -1
	for i, c := range conditions {
		if c.byID {
			driver = i
			break
		}
	}
	if driver < 0 {
		scores := make(map[int][2]int)
		selective := false
		// Long lists last, and not at all once another condition is selective.
		for _, long := range []bool{false, true} {
			for i, c := range conditions {
				if c.rids == "" || c.long != long || (long && selective) {
					continue
				}
				if len(conditions) == 1 {
					driver = i
					break
				}
				score := [2]int{estimate(ctx, db, c, estimateCap), c.rank}
				if !c.indexed {
					score[1] = 3 // an $or: a union of several subqueries
				}
				scores[i] = score
				selective = selective || score[0] <= selectiveRows
			}
		}
		// The indexed conditions that all reached the cap are counted again, further.
		var capped []int
		for i, score := range scores {
			if score[0] == estimateCap && conditions[i].indexed {
				capped = append(capped, i)
			}
		}
		if len(capped) > 1 {
			for _, i := range capped {
				scores[i] = [2]int{estimate(ctx, db, conditions[i], tieCap), scores[i][1]}
			}
		}
		if driver < 0 {
			var best [2]int
			for i := range conditions {
				score, ok := scores[i]
				if !ok {
					continue
				}
				if driver < 0 || score[0] < best[0] || (score[0] == best[0] && score[1] < best[1]) {
					driver, best = i, score
				}
			}
		}
	}
	var clauses []string
	var args []any
	if driver >= 0 {
		c := conditions[driver]
		if c.byID {
			clauses = append(clauses, c.filter)
			args = append(args, c.filterArgs...)
		} else {
			clauses = append(clauses, fmt.Sprintf(`%q.rowid IN (%s)`, table, c.rids))
			args = append(args, c.ridArgs...)
		}
	}
	for i, c := range conditions {
		if i == driver && !c.loose {
			continue
		}
		clauses = append(clauses, c.filter)
		args = append(args, c.filterArgs...)
	}
	return " WHERE " + strings.Join(clauses, " AND "), args
}
