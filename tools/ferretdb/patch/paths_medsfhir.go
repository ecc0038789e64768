// meds-fhir patch, copied into FerretDB's internal/backends/sqlite package at build time
// (scripts/build-engine.mjs). Multikey path indexes for the SQLite backend.
//
// FerretDB stores a document as one JSON column; an SQLite expression index on a path can hold one
// value per row, so a path that runs through an array (two identifiers, several codings, a name's
// family and given parts) cannot be answered from one. This file keeps, per (collection table, path),
// a side table of (value, row id) with one row per value MongoDB's dotted-path rules can reach,
// maintained by SQLite triggers in the same transaction as every insert, update and delete:
//
//	<table>_mk_<hash>(v, rid) PRIMARY KEY (v, rid), index on (rid)
//
// A row with several values also gets a marker row (v = x'00', a blob: it never equals or falls in a
// range of text or numbers), so a two-sided range, which MongoDB lets different elements satisfy, can
// still be pre-filtered from one subquery (see pushdown_medsfhir.go).
//
// A side table is used by queries only once it is complete: _medsfhir_paths records each one and
// whether its backfill finished. createIndexes builds the tables of its key paths before it answers
// (the server's start-up migration); a path a query needs that has none is built in the background
// and used once ready, never on the query path.

package sqlite

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"log"
	"strconv"
	"strings"
	"sync"
	"time"

	sqlite3 "modernc.org/sqlite"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/util/fsql"
)

// pathsTable records the side tables of one database file.
const pathsTable = "_medsfhir_paths"

// multiMarker is the value of a side table's marker row for a document with several values.
const multiMarker = "x'00'"

// backfillChunk is how many rows one backfill transaction reads: each holds SQLite's write lock, so
// writers wait at most about that long (they wait, with busy_timeout, rather than fail).
const backfillChunk = 2000

func init() {
	// Registered before FerretDB opens any connection: every connection that writes a collection runs
	// the triggers, which call it.
	if err := sqlite3.RegisterDeterministicScalarFunction("medsfhir_values", 2, pathValuesSQL); err != nil {
		panic(err)
	}
}

// pathValuesSQL is medsfhir_values(json, path): the JSON array of the strings and numbers that the
// dotted path reaches in the JSON document, NULL when there are none.
func pathValuesSQL(_ *sqlite3.FunctionContext, args []driver.Value) (driver.Value, error) {
	var text string
	switch v := args[0].(type) {
	case string:
		text = v
	case []byte:
		text = string(v)
	default:
		return nil, nil
	}
	path, _ := args[1].(string)
	var segments []string
	if path != "" {
		segments = strings.Split(path, ".")
	}
	var out []any
	if !scanPathValues(text, skipSpace(text, 0), segments, &out) || len(out) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// scanPathValues appends the scalars reachable by path from the JSON value at s[i:] under MongoDB's
// rules, generously: an array met on the way stands for each of its elements (at any depth, where
// MongoDB expands one level), and a numeric segment is also tried as an array position. More values
// only let more rows through the pre-filter, which FerretDB filters again. It scans the text without
// decoding what the path does not reach (a trigger calls it for every path of every written row);
// false means the text is not valid JSON as far as it looked.
func scanPathValues(s string, i int, path []string, out *[]any) bool {
	if i >= len(s) {
		return false
	}
	switch s[i] {
	case '{':
		if len(path) == 0 {
			return true
		}
		i = skipSpace(s, i+1)
		for i < len(s) && s[i] != '}' {
			key, at, ok := memberKey(s, i)
			if !ok {
				return false
			}
			if key == path[0] && !scanPathValues(s, at, path[1:], out) {
				return false
			}
			if i, ok = nextItem(s, at); !ok {
				return false
			}
		}
		return i < len(s)
	case '[':
		position := -1
		if len(path) > 0 {
			if k, err := strconv.Atoi(path[0]); err == nil && k >= 0 {
				position = k
			}
		}
		i = skipSpace(s, i+1)
		for n := 0; i < len(s) && s[i] != ']'; n++ {
			if !scanPathValues(s, i, path, out) {
				return false
			}
			if n == position && !scanPathValues(s, i, path[1:], out) {
				return false
			}
			var ok bool
			if i, ok = nextItem(s, i); !ok {
				return false
			}
		}
		return i < len(s)
	case '"':
		end, ok := skipString(s, i)
		if !ok {
			return false
		}
		if len(path) == 0 {
			value, ok := unquote(s[i:end])
			if !ok {
				return false
			}
			*out = append(*out, value)
		}
		return true
	default:
		end, ok := skipValue(s, i)
		if !ok {
			return false
		}
		if len(path) == 0 && (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
			*out = append(*out, json.Number(s[i:end]))
		}
		return true
	}
}

// memberKey reads the key of the object member at s[i] and its colon: the key, and where its value starts.
func memberKey(s string, i int) (string, int, bool) {
	keyEnd, ok := skipString(s, i)
	if !ok {
		return "", 0, false
	}
	key, ok := unquote(s[i:keyEnd])
	if !ok {
		return "", 0, false
	}
	i = skipSpace(s, keyEnd)
	if i >= len(s) || s[i] != ':' {
		return "", 0, false
	}
	return key, skipSpace(s, i+1), true
}

// nextItem skips the value at s[i] and the comma after it: where the next member or element starts.
func nextItem(s string, i int) (int, bool) {
	end, ok := skipValue(s, i)
	if !ok {
		return 0, false
	}
	i = skipSpace(s, end)
	if i < len(s) && s[i] == ',' {
		i = skipSpace(s, i+1)
	}
	return i, true
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// skipString is the end of the JSON string that starts at s[i] (a quote).
func skipString(s string, i int) (int, bool) {
	if i >= len(s) || s[i] != '"' {
		return 0, false
	}
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipValue is the end of the JSON value that starts at s[i].
func skipValue(s string, i int) (int, bool) {
	if i >= len(s) {
		return 0, false
	}
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '"':
				end, ok := skipString(s, i)
				if !ok {
					return 0, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	default:
		start := i
		for i < len(s) && !strings.ContainsRune(",}] \t\n\r", rune(s[i])) {
			i++
		}
		return i, i > start
	}
}

// unquote decodes a JSON string literal (quotes included); most have no escapes and are sliced.
func unquote(literal string) (string, bool) {
	if !strings.ContainsRune(literal, '\\') {
		return literal[1 : len(literal)-1], true
	}
	var value string
	if err := json.Unmarshal([]byte(literal), &value); err != nil {
		return "", false
	}
	return value, true
}

// pathState is what this process knows of one side table.
type pathState struct {
	side  string
	ready bool
}

// pathIndexes tracks the side tables of every open database file, and builds them.
type pathIndexes struct {
	mu     sync.Mutex
	dbs    map[*fsql.DB]map[string]*pathState // keyed by table + "\x00" + path
	builds map[string]*sync.Mutex             // one build at a time per side table
	queue  chan buildRequest
	queued map[string]bool
}

type buildRequest struct {
	db    *fsql.DB
	table string
	path  string
}

var paths = newPathIndexes()

var busyTimeoutOnce sync.Once

func newPathIndexes() *pathIndexes {
	p := &pathIndexes{
		dbs:    map[*fsql.DB]map[string]*pathState{},
		builds: map[string]*sync.Mutex{},
		queue:  make(chan buildRequest, 1024),
		queued: map[string]bool{},
	}
	go p.background()
	return p
}

// sideTable is the name of the side table of a path of a collection table.
func sideTable(table, path string) string {
	return fmt.Sprintf("%s_mk_%08x", table, fnv32(path))
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// known loads what the database file records about its side tables, once per open database. An
// entry counts only while its triggers exist: a table dropped behind our back takes them along.
func (p *pathIndexes) known(ctx context.Context, db *fsql.DB) map[string]*pathState {
	p.mu.Lock()
	states, ok := p.dbs[db]
	p.mu.Unlock()
	if ok {
		return states
	}
	busyTimeoutOnce.Do(func() {
		// The busy timeout the connections really have (tools/ferretdb/main.go sets it in the URL).
		var ms int
		if db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&ms) == nil {
			log.Printf("meds-fhir: SQLite busy_timeout %d ms", ms)
		}
	})
	states = map[string]*pathState{}
	var exists int
	row := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, pathsTable)
	if err := row.Scan(&exists); err != nil {
		return states // not cached: asked again next time
	}
	if exists > 0 {
		rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT p.table_name, p.path, p.side, p.ready FROM %q p
			WHERE EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'trigger' AND m.name = p.side || '_ad')`, pathsTable))
		if err != nil {
			return states
		}
		for rows.Next() {
			var table, path, side string
			var ready bool
			if rows.Scan(&table, &path, &side, &ready) == nil {
				states[table+"\x00"+path] = &pathState{side: side, ready: ready}
			}
		}
		if rows.Close() != nil || rows.Err() != nil {
			return map[string]*pathState{}
		}
		refreshInsertTriggers(ctx, db, states)
	}
	p.mu.Lock()
	if cached, ok := p.dbs[db]; ok {
		states = cached
	} else {
		p.dbs[db] = states
	}
	p.mu.Unlock()
	return states
}

// readySide is the side table of a path when it is complete; otherwise "", and the path is queued for
// a background build (the query goes on without it).
func (p *pathIndexes) readySide(ctx context.Context, db *fsql.DB, table, path string) string {
	states := p.known(ctx, db)
	key := table + "\x00" + path
	p.mu.Lock()
	state := states[key]
	if state != nil && state.ready {
		p.mu.Unlock()
		return state.side
	}
	queueKey := fmt.Sprintf("%p\x00%s", db, key)
	if !p.queued[queueKey] {
		select {
		case p.queue <- buildRequest{db: db, table: table, path: path}:
			p.queued[queueKey] = true
		default: // full: asked again by a later query
		}
	}
	p.mu.Unlock()
	return ""
}

// background builds queued side tables one at a time, so that they share the write lock with the
// server's writes rather than take it over.
func (p *pathIndexes) background() {
	for request := range p.queue {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		started := time.Now()
		err := p.build(ctx, request.db, request.table, request.path)
		cancel()
		p.mu.Lock()
		delete(p.queued, fmt.Sprintf("%p\x00%s\x00%s", request.db, request.table, request.path))
		p.mu.Unlock()
		if err != nil {
			log.Printf("meds-fhir: background index of %s on %s failed: %v", request.path, request.table, err)
		} else {
			log.Printf("meds-fhir: background index of %s on %s ready in %s", request.path, request.table, time.Since(started).Round(time.Millisecond))
		}
	}
}

// forget drops what this process knows of a collection table's side tables (the table is gone).
func (p *pathIndexes) forget(db *fsql.DB, table string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key := range p.dbs[db] {
		if strings.HasPrefix(key, table+"\x00") {
			delete(p.dbs[db], key)
		}
	}
}

// mentionsPath is a test of row's stored JSON that every document holding a value at path passes: the
// path's longest segment appears in it, closed by the quote that ends a key. It lets an insert skip the
// scan for a path its document does not have (a sensitivity label, which most resources lack) at the
// cost of one byte search (none for a path of positions only). One segment because the others, present or not, cost a search each for little
// more selectivity; no opening quote because SQLite's instr compares the whole needle at each place its
// first byte occurs, and a quote occurs at every key and string. pushdownPath allows no quote or
// backslash in a segment, so it is a safe literal.
func mentionsPath(row, path string) string {
	longest := ""
	for _, segment := range strings.Split(path, ".") {
		// A position in an array is no key: a document holding the path need not contain it.
		if _, err := strconv.Atoi(segment); err == nil {
			continue
		}
		if len(segment) > len(longest) {
			longest = segment
		}
	}
	if longest == "" {
		return "1"
	}
	return fmt.Sprintf(`instr(%s.%s, '%s"')`, row, metadata.DefaultColumn, longest)
}

// pathValues is the table of the values at path of row's document: medsfhir_values scans it for them.
func pathValues(row, path string) string {
	return fmt.Sprintf(`json_each(medsfhir_values(%s.%s, '%s'))`, row, metadata.DefaultColumn, path)
}

// insertValues is the trigger body that indexes the new row's values at path (and its marker row).
func insertValues(path, side string) string {
	return fmt.Sprintf(`INSERT OR IGNORE INTO %q (v, rid) SELECT j.value, new.rowid FROM %s AS j WHERE j.type IN ('text', 'integer', 'real');
		INSERT OR IGNORE INTO %[1]q (v, rid) SELECT %[3]s, new.rowid WHERE (SELECT count(*) FROM %[1]q WHERE rid = new.rowid) > 1;`,
		side, pathValues("new", path), multiMarker)
}

// insertTrigger is the statement that creates a side table's insert trigger.
func insertTrigger(table, path, side string) string {
	return fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %q AFTER INSERT ON %q WHEN %s BEGIN %s END`,
		side+"_ai", table, mentionsPath("new", path), insertValues(path, side))
}

// refreshInsertTriggers replaces the insert triggers that an earlier build of this patch made with
// another guard (sqlite_master keeps each trigger's text): a database carried over from it gets
// today's cheaper one. Best effort: a trigger left as it was is still right, only slower.
func refreshInsertTriggers(ctx context.Context, db *fsql.DB, states map[string]*pathState) {
	for key, state := range states {
		table, path, _ := strings.Cut(key, "\x00")
		var text string
		name := state.side + "_ai"
		if db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?`, name).Scan(&text) != nil {
			continue
		}
		if strings.Contains(text, " WHEN "+mentionsPath("new", path)+" BEGIN ") {
			continue
		}
		err := db.InTransaction(ctx, func(tx *fsql.Tx) error {
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`DROP TRIGGER IF EXISTS %q`, name)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, insertTrigger(table, path, state.side))
			return err
		})
		if err != nil {
			log.Printf("meds-fhir: insert trigger of %s on %s kept as it was: %v", path, table, err)
		}
	}
}

// build creates and fills the side table of a path (nothing when it is ready), then marks it ready.
// Triggers first, then the backfill in chunks: a row written meanwhile is indexed by its trigger, and a
// chunk reads each row as of its own transaction, so no write is missed and none is indexed twice.
func (p *pathIndexes) build(ctx context.Context, db *fsql.DB, table, path string) error {
	if !pushdownPath(path) {
		return fmt.Errorf("path %q is not indexable", path)
	}
	key := table + "\x00" + path
	p.mu.Lock()
	lock := p.builds[fmt.Sprintf("%p\x00%s", db, key)]
	if lock == nil {
		lock = new(sync.Mutex)
		p.builds[fmt.Sprintf("%p\x00%s", db, key)] = lock
	}
	p.mu.Unlock()
	lock.Lock()
	defer lock.Unlock()

	states := p.known(ctx, db)
	p.mu.Lock()
	state := states[key]
	p.mu.Unlock()
	if state != nil && state.ready {
		return nil
	}

	side := sideTable(table, path)
	statements := []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %q (table_name TEXT NOT NULL, path TEXT NOT NULL, side TEXT NOT NULL,
			ready INTEGER NOT NULL, PRIMARY KEY (table_name, path))`, pathsTable),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %q (v NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY (v, rid)) WITHOUT ROWID`, side),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (rid)`, side+"_rid", side),
		insertTrigger(table, path, side),
		fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %q AFTER UPDATE OF %s ON %q BEGIN DELETE FROM %q WHERE rid = old.rowid; %s END`,
			side+"_au", metadata.DefaultColumn, table, side, insertValues(path, side)),
		fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %q AFTER DELETE ON %q BEGIN DELETE FROM %q WHERE rid = old.rowid; END`,
			side+"_ad", table, side),
		fmt.Sprintf(`INSERT INTO %q (table_name, path, side, ready) VALUES (?, ?, ?, 0) ON CONFLICT DO NOTHING`, pathsTable),
	}
	err := db.InTransaction(ctx, func(tx *fsql.Tx) error {
		for i, statement := range statements {
			var args []any
			if i == len(statements)-1 {
				args = []any{table, path, side}
			}
			if _, err := tx.ExecContext(ctx, statement, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	var ready bool
	if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT ready FROM %q WHERE table_name = ? AND path = ?`, pathsTable), table, path).Scan(&ready); err != nil {
		return err
	}
	if !ready {
		if err := p.backfill(ctx, db, table, side, pathValues(fmt.Sprintf("%q", table), path)); err != nil {
			return err
		}
		_, _ = db.ExecContext(ctx, fmt.Sprintf(`ANALYZE %q`, side))
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`UPDATE %q SET ready = 1 WHERE table_name = ? AND path = ?`, pathsTable), table, path); err != nil {
			return err
		}
	}
	p.mu.Lock()
	states[key] = &pathState{side: side, ready: true}
	p.mu.Unlock()
	return nil
}

func (p *pathIndexes) backfill(ctx context.Context, db *fsql.DB, table, side, values string) error {
	var last int64
	if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT coalesce(max(rowid), 0) FROM %q`, table)).Scan(&last); err != nil {
		return err
	}
	fill := fmt.Sprintf(`INSERT OR IGNORE INTO %q (v, rid) SELECT j.value, %q.rowid FROM %[2]q, %s AS j
		WHERE %[2]q.rowid > ? AND %[2]q.rowid <= ? AND j.type IN ('text', 'integer', 'real')`, side, table, values)
	mark := fmt.Sprintf(`INSERT OR IGNORE INTO %q (v, rid) SELECT %s, rid FROM %[1]q
		WHERE rid > ? AND rid <= ? GROUP BY rid HAVING count(*) > 1`, side, multiMarker)
	for from := int64(0); from < last; from += backfillChunk {
		to := from + backfillChunk
		err := db.InTransaction(ctx, func(tx *fsql.Tx) error {
			if _, err := tx.ExecContext(ctx, fill, from, to); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, mark, from, to)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ensureCollectionPaths builds the side tables of every key path of a collection's indexes that
// lack one, and drops SQLite indexes that nothing uses any more and every write would keep paying
// for: those of the earlier build-on-first-query patch (`_meds_`) and FerretDB's own expression
// indexes of non-unique indexes (data written by an earlier build).
func (c *collection) ensureCollectionPaths(ctx context.Context) error {
	db := c.r.DatabaseGetExisting(ctx, c.dbName)
	meta := c.r.CollectionGet(ctx, c.dbName, c.name)
	if db == nil || meta == nil {
		return nil
	}
	legacy, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name LIKE ? ESCAPE '\'`,
		meta.TableName, likePrefix(meta.TableName+"_meds_"))
	if err == nil {
		var names []string
		for legacy.Next() {
			var name string
			if legacy.Scan(&name) == nil {
				names = append(names, name)
			}
		}
		_ = legacy.Close()
		for _, name := range names {
			_, _ = db.ExecContext(ctx, fmt.Sprintf(`DROP INDEX IF EXISTS %q`, name))
		}
	}
	for _, index := range meta.Settings.Indexes {
		if !index.Unique {
			// Built by FerretDB before this patch (data from earlier versions); no query uses it.
			_, _ = db.ExecContext(ctx, fmt.Sprintf(`DROP INDEX IF EXISTS %q`, meta.TableName+"_"+index.Name))
		}
		for _, key := range index.Key {
			if key.Field == "_id" || !pushdownPath(key.Field) {
				continue
			}
			started := time.Now()
			if err := paths.build(ctx, db, meta.TableName, key.Field); err != nil {
				return fmt.Errorf("index of %s on %s.%s: %w", key.Field, c.dbName, c.name, err)
			}
			if took := time.Since(started); took > time.Second {
				log.Printf("meds-fhir: index of %s on %s.%s built in %s", key.Field, c.dbName, c.name, took.Round(time.Millisecond))
			}
		}
	}
	return nil
}

// dropCollectionPaths removes a dropped collection's side tables (its triggers went with its table).
func dropCollectionPaths(ctx context.Context, r *metadata.Registry, dbName, table string) {
	db := r.DatabaseGetExisting(ctx, dbName)
	if db == nil || table == "" {
		return
	}
	paths.forget(db, table)
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '\'`, likePrefix(table+"_mk_"))
	if err != nil {
		return
	}
	var names []string
	for rows.Next() {
		var name string
		if rows.Scan(&name) == nil {
			names = append(names, name)
		}
	}
	_ = rows.Close()
	for _, name := range names {
		_, _ = db.ExecContext(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %q`, name))
	}
	_, _ = db.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %q WHERE table_name = ?`, pathsTable), table)
}

// collectionTable is a collection's table name, "" when there is none.
func collectionTable(ctx context.Context, r *metadata.Registry, dbName, name string) string {
	if meta := r.CollectionGet(ctx, dbName, name); meta != nil {
		return meta.TableName
	}
	return ""
}

// likePrefix is a LIKE pattern (with ESCAPE '\\') for the names that start with prefix.
func likePrefix(prefix string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
}
