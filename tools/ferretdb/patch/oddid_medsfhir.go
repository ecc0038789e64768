// meds-fhir patch, copied into FerretDB's internal/backends/sqlite/metadata package at build time
// (scripts/build-engine.mjs). The odd-id partial index (what it holds and why: idorder_medsfhir.go) of
// every collection walked by `_id`, made with its table, so that a find sorted by `_id` never builds
// it over a table full of rows while holding the write lock. Tables made before this patch get it
// when the engine opens their database, before it accepts a connection (a one-time scan per table).

package metadata

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/FerretDB/FerretDB/internal/util/fsql"
)

// MigrationLogPrefix begins the log line of a start-up migration step: the server's start-up waits
// for the engine while its last line has it (src/db/embedded-engine.ts), however long the step takes.
const MigrationLogPrefix = "meds-fhir migration:"

// plainIDSchema is how every stored document whose `_id` is a string begins (FerretDB puts `_id`
// first, and sjson writes the schema before the fields).
const plainIDSchema = `{"$s":{"p":{"_id":{"t":"string"}`

// OddIDWhere is the test of an odd `_id`, the WHERE of the partial index (unqualified, as a partial
// index's WHERE is, so that a look-up's WHERE is the same expression and may use it).
func OddIDWhere() string {
	return fmt.Sprintf(`(substr(%s, 1, %d) IS NOT '%s' OR instr(%s, '\') OR instr(%[4]s, ' ') OR instr(%[4]s, '!'))`,
		DefaultColumn, len(plainIDSchema), plainIDSchema, IDColumn)
}

// OddIDIndex is the name of the table's odd-id index.
func OddIDIndex(table string) string {
	return table + "_medsfhir_odd_id"
}

// walkedByID tells whether finds sorted by `_id` are expected on the collection: not on meds-fhir's
// own collections (named `_...`: history, journal, queues), whose largest would pay for the index at
// every insert and at the upgrade's scan for nothing. A find sorted by `_id` there still works: it
// makes the index then (ensureOddIDIndex of idorder_medsfhir.go).
func walkedByID(collection string) bool {
	return !strings.HasPrefix(collection, "_")
}

// CreateOddIDIndex makes the table's odd-id index unless it exists.
func CreateOddIDIndex(ctx context.Context, db *fsql.DB, table string) error {
	_, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s) WHERE %s`,
		OddIDIndex(table), table, IDColumn, OddIDWhere()))
	return err
}

// createOddIDIndexes gives every collection table of a database just opened its odd-id index, saying
// so before each one it has to build over existing rows.
func createOddIDIndexes(ctx context.Context, db *fsql.DB, colls map[string]*Collection, l *slog.Logger) error {
	for _, c := range colls {
		if !walkedByID(c.Name) {
			continue
		}
		var exists int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`,
			OddIDIndex(c.TableName)).Scan(&exists)
		if err != nil {
			return err
		}
		if exists > 0 {
			continue
		}
		l.Info(MigrationLogPrefix+" building the odd-id index over the existing rows (once)", "collection", c.Name)
		if err = CreateOddIDIndex(ctx, db, c.TableName); err != nil {
			return err
		}
	}
	return nil
}
