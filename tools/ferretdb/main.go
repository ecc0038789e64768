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

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // the SQLite driver FerretDB itself uses
)

// dropIDPaths drops the second index on _id that engines built before our IDColumn edit
// (scripts/build-engine.mjs) added to every collection table (`<table>_id_path`, on
// `_ferretdb_sjson->'$._id'`): look-ups by _id are answered from FerretDB's unique _id index now, and
// that index would only cost every insert. FerretDB never listed it.
func dropIDPaths(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	for _, file := range files {
		// Opened and closed each round: a dropped database's file is deleted and may come back anew.
		db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
		if err != nil {
			continue
		}
		rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%\_id\_path' ESCAPE '\'`)
		var indexes []string
		if err == nil {
			for rows.Next() {
				var name string
				if rows.Scan(&name) == nil {
					indexes = append(indexes, name)
				}
			}
			rows.Close()
		}
		for _, name := range indexes {
			// Errors (a table dropped meanwhile) are retried next round.
			_, _ = db.Exec(fmt.Sprintf(`DROP INDEX IF EXISTS %q`, name))
		}
		db.Close()
	}
}

// sqliteOptions apply to every connection FerretDB opens. Writers wait for SQLite's write lock for up
// to 30 s (FerretDB's default is 10 s; a large transaction can hold the lock longer) instead of failing
// with "database is locked", and transactions take the write lock when they begin (BEGIN IMMEDIATE):
// a deferred transaction that reads and then writes fails at once with SQLITE_BUSY when another
// writer committed in between, whatever the busy timeout. Reads go through a memory map of the
// database file (up to 1 GiB): each of FerretDB's pooled connections otherwise reads pages with pread
// into a private 2 MiB cache, which was 17% of the engine's CPU on a date-window search. SQLite still
// writes with write(), so the map changes nothing about durability.
const sqliteOptions = "_pragma=busy_timeout(30000)&_pragma=mmap_size(1073741824)&_txlock=immediate"

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

	// Before FerretDB opens the databases: nothing writes meanwhile.
	dropIDPaths(abs)

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

	// The parent process waits for this line before connecting.
	fmt.Println("ferretdb listening on " + *listen)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
