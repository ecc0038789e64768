// Command ferretdb-embedded runs FerretDB 1.24 in-process on SQLite so that meds-fhir has a
// MongoDB-compatible engine on machines where no mongod binary can be installed.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"net/http"
	_ "net/http/pprof" // served only with -pprof: CPU and heap profiles of the engine, for benchmarks
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // the SQLite driver FerretDB itself uses
)

// idPath is the SQL expression FerretDB's SQLite backend filters on for `{_id: value}` (its
// metadata.IDColumn). FerretDB's own unique _id index is built on a different expression
// (`_ferretdb_sjson->"_id"`), so SQLite cannot use it and every look-up by _id scans the table.
const idPath = "_ferretdb_sjson->'$._id'"

// indexIDPaths adds an index on idPath to every collection table of every database in dir that lacks
// one, so reads by _id are index look-ups. FerretDB does not list these indexes (they are not in its
// metadata) and drops them with their tables.
func indexIDPaths(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	for _, file := range files {
		// Opened and closed each round: a dropped database's file is deleted and may come back anew.
		db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
		if err != nil {
			continue
		}
		rows, err := db.Query(`SELECT c.table_name FROM _ferretdb_collections c
			WHERE NOT EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'index' AND m.name = c.table_name || '_id_path')`)
		var tables []string
		if err == nil {
			for rows.Next() {
				var table string
				if rows.Scan(&table) == nil {
					tables = append(tables, table)
				}
			}
			rows.Close()
		}
		for _, table := range tables {
			// Errors (a table dropped meanwhile) are retried next round.
			_, _ = db.Exec(fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, table+"_id_path", table, idPath))
		}
		db.Close()
	}
}

// sqliteOptions apply to every connection FerretDB opens. Writers wait for SQLite's write lock for up
// to 30 s (FerretDB's default is 10 s; a large transaction can hold the lock longer) instead of failing
// with "database is locked", and transactions take the write lock when they begin (BEGIN IMMEDIATE):
// a deferred transaction that reads and then writes fails at once with SQLITE_BUSY when another
// writer committed in between, whatever the busy timeout.
const sqliteOptions = "_pragma=busy_timeout(30000)&_txlock=immediate"

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on")
	dir := flag.String("dir", "./data/ferretdb", "directory for the SQLite files")
	pprof := flag.String("pprof", os.Getenv("ENGINE_PPROF"), "address for Go's profiling endpoints (off when empty)")
	flag.Parse()

	if *pprof != "" {
		go func() { log.Println(http.ListenAndServe(*pprof, nil)) }()
	}

	abs, err := filepath.Abs(*dir)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		log.Fatal(err)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/?" + sqliteOptions,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	go func() {
		for ctx.Err() == nil {
			indexIDPaths(abs)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()

	// The parent process waits for this line before connecting.
	fmt.Println("ferretdb listening on " + *listen)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
