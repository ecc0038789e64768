// Builds the embedded MongoDB-compatible engine (FerretDB 1.24 on SQLite, tools/ferretdb) with the
// machine's Go toolchain, once: the binary is cached in .cache/ and rebuilt only when its sources change.
//
// FerretDB is built from a patched copy of its module (tools/ferretdb/patch): string and date
// conditions of a filter are pushed down to SQLite as a pre-filter on multikey side tables that
// createIndexes builds (pushdown_medsfhir.go, paths_medsfhir.go), and update, findAndModify and
// delete read-modify-write atomically per collection (statement_lock_medsfhir.go); counts are answered
// in SQL when that is exactly MongoDB's answer (exact_medsfhir.go, count_medsfhir.go), and so are the
// first rows of a sorted, limited find (order_medsfhir.go, sort_medsfhir.go); a find sorted by _id
// walks the _id index (idorder_medsfhir.go), whose odd-id index every table gets when it is made
// (oddid_medsfhir.go).
// The SQLite driver (modernc.org/sqlite) is built from an edited copy too (SQLITE_EDITS below).
// The copies are made from the Go module cache and edited here, so the repository holds only our patch.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'tools', 'ferretdb');
const cache = join(root, '.cache');
export const engineBinary = join(cache, 'ferretdb-embedded');
const FERRETDB = 'github.com/FerretDB/FerretDB';
const SQLITE_DRIVER = 'modernc.org/sqlite';

const goEnv = { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0' };

/**
 * FerretDB logs every SQL statement with its arguments through l.With(...), which formats them
 * whatever the level; debugSQL (debug_log_medsfhir.go) formats them only when debug logging is on.
 * Every such call in `file` is replaced, and fmt, then unused there, is no longer imported.
 */
function quietStatementLogs(file, receiver) {
  const call = (direction) => ({
    file,
    all: true,
    from: `${receiver}.l.With(fields...).DebugContext(ctx, fmt.Sprintf("${direction}%s", query))`,
    to: `debugSQL(ctx, ${receiver}.l, fields, "${direction}", query)`,
  });
  return [call('>>> '), call('<<< '), { file, from: '\t"fmt"\n', to: '' }];
}

/** The decoding of an object or array in `file` tries `split` (decode_medsfhir.go) first. */
function splitFirst(file, type, split) {
  const decode = (t) =>
    `${t}if err := dec.Decode(&rawMessages); err != nil {\n${t}\treturn lazyerrors.Error(err)\n${t}}\n\n` +
    `${t}if err := checkConsumed(dec, r); err != nil {\n${t}\treturn lazyerrors.Error(err)\n${t}}\n`;
  const open = (t) => `${t}r := bytes.NewReader(data)\n${t}dec := json.NewDecoder(r)\n\n`;
  return {
    file,
    from: `${open('\t')}\tvar rawMessages ${type}\n${decode('\t')}`,
    to: `\trawMessages, fast := ${split}(data)\n\tif !fast {\n${open('\t\t')}${decode('\t\t')}\t}\n`,
  };
}

/** Each edit of FerretDB's sources: the text that must be there, and what replaces it (`all`: everywhere). */
const EDITS = [
  {
    file: 'internal/backends/sqlite/collection.go',
    // Inserts encode their documents before the write lock is taken, not while every writer waits
    // (insert_medsfhir.go).
    from: `	err := db.InTransaction(ctx, func(tx *fsql.Tx) error {
		batchSize := c.r.BatchSize
		if batchSize < 1 {
			panic("batch-size should be greater or equal to 1")
		}

		var batch []*types.Document
		docs := params.Docs

		for len(docs) > 0 {
			i := min(batchSize, len(docs))
			batch, docs = docs[:i], docs[i:]

			q, args, err := prepareInsertStatement(meta.TableName, meta.Capped(), batch)
			if err != nil {
				return lazyerrors.Error(err)
			}

			if _, err = tx.ExecContext(ctx, q, args...); err != nil {`,
    to: `	statements, err := prepareInserts(meta.TableName, meta.Capped(), params.Docs, c.r.BatchSize)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	err = db.InTransaction(ctx, func(tx *fsql.Tx) error {
		for _, statement := range statements {
			if _, err := tx.ExecContext(ctx, statement.query, statement.args...); err != nil {`,
  },
  {
    file: 'internal/backends/sqlite/collection.go',
    // Replacements alike.
    from: `	err := db.InTransaction(ctx, func(tx *fsql.Tx) error {
		for _, doc := range params.Docs {
			b, err := sjson.Marshal(doc)
			if err != nil {
				return lazyerrors.Error(err)
			}

			id, _ := doc.Get("_id")
			must.NotBeZero(id)

			arg := string(must.NotFail(sjson.MarshalSingleValue(id)))

			r, err := tx.ExecContext(ctx, q, string(b), arg)
			if err != nil {`,
    to: `	updates, err := prepareUpdates(params.Docs)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	err = db.InTransaction(ctx, func(tx *fsql.Tx) error {
		for _, update := range updates {
			r, err := tx.ExecContext(ctx, q, update.doc, update.id)
			if err != nil {`,
  },
  ...quietStatementLogs('internal/util/fsql/tx.go', 'tx'),
  ...quietStatementLogs('internal/util/fsql/db.go', 'db'),
  {
    file: 'internal/backends/sqlite/metadata/pool/pool.go',
    // dropDatabase removed the database file only: a database created anew under the same name then
    // opened the old WAL and its index, and truncated the index under connections still mapping it
    // (the engine died of SIGBUS in SQLite's WAL look-up). The WAL and its index now go with the file.
    from: `\tif f := p.databaseFile(name); f != "" {\n\t\tif err := os.Remove(f); err != nil {\n`,
    to: `\tif f := p.databaseFile(name); f != "" {\n\t\t_ = os.Remove(f + "-wal")\n\t\t_ = os.Remove(f + "-shm")\n\n\t\tif err := os.Remove(f); err != nil {\n`,
  },
  {
    file: 'internal/backends/sqlite/metadata/metadata.go',
    // Look-ups, updates and deletes by _id filter on this expression. FerretDB's unique _id index is on
    // `_ferretdb_sjson->"_id"`, which SQLite parses as `->'_id'`, not as `->'$._id'`: written so, they
    // are answered from that index, and no second index on _id has to be kept by every insert.
    from: `IDColumn = DefaultColumn + "->'$._id'"`,
    to: `IDColumn = DefaultColumn + "->'_id'"`,
  },
  // A stored document's objects, arrays and plain strings are read in one scan (decode_medsfhir.go);
  // FerretDB's decoding stays for anything else.
  splitFirst('internal/handler/sjson/document.go', 'map[string]json.RawMessage', 'splitObject'),
  splitFirst('internal/handler/sjson/array.go', '[]json.RawMessage', 'splitArray'),
  {
    file: 'internal/handler/sjson/sjson.go',
    from: `\tvar v map[string]json.RawMessage\n\tr := bytes.NewReader(data)\n\tdec := json.NewDecoder(r)\n\n\terr := dec.Decode(&v)\n\tif err != nil {\n\t\treturn nil, lazyerrors.Error(err)\n\t}\n\n\tif err = checkConsumed(dec, r); err != nil {\n\t\treturn nil, lazyerrors.Error(err)\n\t}\n\n\t// decode schema from the $s field of the document\n\tjsch, ok := v["$s"]\n\tif !ok {\n\t\treturn nil, lazyerrors.Errorf("schema is not set")\n\t}\n\n\tvar sch schema\n\tr = bytes.NewReader(jsch)\n\tdec = json.NewDecoder(r)\n\tdec.DisallowUnknownFields()\n\n\tif err := dec.Decode(&sch); err != nil {\n\t\treturn nil, lazyerrors.Error(err)\n\t}\n\n\tif err := checkConsumed(dec, r); err != nil {\n\t\treturn nil, lazyerrors.Error(err)\n\t}\n\n`,
    to: `\tv, sch, err := splitStored(data)\n\tif err != nil {\n\t\treturn nil, lazyerrors.Error(err)\n\t}\n\n`,
  },
  {
    file: 'internal/handler/sjson/string.go',
    from: `\tr := bytes.NewReader(data)\n\tdec := json.NewDecoder(r)\n\n\tvar o string\n`,
    to: `\tif s, ok := plainString(data); ok {\n\t\t*str = stringType(s)\n\n\t\treturn nil\n\t}\n\n\tr := bytes.NewReader(data)\n\tdec := json.NewDecoder(r)\n\n\tvar o string\n`,
  },
  {
    file: 'internal/util/resource/resource.go',
    // Track records a stack trace of every iterator and document it is given (a leak detector of
    // FerretDB's debug builds, which panics on a leak): a sixth of the engine's CPU on reads. Our
    // release build tracks nothing, like Untrack below.
    from: `\tcheckArgs(obj, token)\n\n\tname := profileName(obj)\n`,
    to: `\tcheckArgs(obj, token)\n\n\tif !debugbuild.Enabled {\n\t\treturn\n\t}\n\n\tname := profileName(obj)\n`,
  },
  {
    file: 'internal/util/resource/resource.go',
    from: `\tcheckArgs(obj, token)\n\n\tp := pprof.Lookup(profileName(obj))\n`,
    to: `\tcheckArgs(obj, token)\n\n\tif !debugbuild.Enabled {\n\t\treturn\n\t}\n\n\tp := pprof.Lookup(profileName(obj))\n`,
  },
  {
    file: 'internal/backends/sqlite/collection.go',
    // Query: FerretDB's `{_id: value}`-only pushdown becomes ours (the first of two such blocks).
    from: `	if params.Filter.Len() == 1 {
		v, _ := params.Filter.Get("_id")
		switch v.(type) {
		case string, types.ObjectID:
			whereClause = fmt.Sprintf(\` WHERE %s = ?\`, metadata.IDColumn)
			args = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
		}
	}
`,
    to: `	whereClause, args = pushdownWhere(ctx, db, meta.TableName, params.Filter)
`,
  },
  {
    file: 'internal/backends/sqlite/collection.go',
    // Explain: the same pre-filter, so that explain() shows the SQLite plan that queries get.
    from: `	if params.Filter.Len() == 1 {
		v, _ := params.Filter.Get("_id")
		switch v.(type) {
		case string, types.ObjectID:
			filterPushdown = true
			whereClause = fmt.Sprintf(\` WHERE %s = ?\`, metadata.IDColumn)
			args = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
		}
	}
`,
    to: `	whereClause, args = pushdownWhere(ctx, db, meta.TableName, params.Filter)
	filterPushdown = whereClause != ""
`,
  },
  {
    file: 'internal/backends/sqlite/collection.go',
    // createIndexes: the multikey side tables of every key path of the collection's indexes, built
    // before the command answers (paths_medsfhir.go), outside the registry lock so other
    // collections are served meanwhile.
    from: `	err := c.r.IndexesCreate(ctx, c.dbName, c.name, indexes)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}
`,
    to: `	err := c.r.IndexesCreate(ctx, c.dbName, c.name, indexes)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	if err = c.ensureCollectionPaths(ctx); err != nil {
		return nil, lazyerrors.Error(err)
	}
`,
  },
  {
    file: 'internal/backends/sqlite/metadata/registry.go',
    // A table walked by _id gets its odd-id index (oddid_medsfhir.go) with the table, while it is empty...
    from: `	err = r.indexesCreate(ctx, dbName, collectionName, []IndexInfo{{
		Name:   backends.DefaultIndexName,
		Key:    []IndexKeyPair{{Field: "_id"}},
		Unique: true,
	}})
	if err != nil {
`,
    to: `	err = r.indexesCreate(ctx, dbName, collectionName, []IndexInfo{{
		Name:   backends.DefaultIndexName,
		Key:    []IndexKeyPair{{Field: "_id"}},
		Unique: true,
	}})
	if err == nil && walkedByID(collectionName) {
		err = CreateOddIDIndex(ctx, db, tableName)
	}
	if err != nil {
`,
  },
  {
    file: 'internal/backends/sqlite/metadata/registry.go',
    // ...and a table made before it, when the engine opens its database at start-up.
    from: `	r.colls[dbName] = colls

	return nil
}
`,
    to: `	if err = createOddIDIndexes(ctx, db, colls, r.l); err != nil {
		return lazyerrors.Error(err)
	}

	r.colls[dbName] = colls

	return nil
}
`,
  },
  {
    file: 'internal/backends/sqlite/metadata/registry.go',
    // A non-unique index is answered by the side tables, so FerretDB's own expression index (which no
    // query uses) is not built; it stays in the metadata, so listIndexes shows it. Unique ones are
    // built: they enforce uniqueness.
    from: `		q = fmt.Sprintf(
			q,
			c.TableName+"_"+index.Name,
			c.TableName,
			strings.Join(columns, ", "),
		)
`,
    to: `		q = fmt.Sprintf(
			q,
			c.TableName+"_"+index.Name,
			c.TableName,
			strings.Join(columns, ", "),
		)

		if !index.Unique {
			q = "SELECT 1"
		}
`,
  },
  {
    file: 'internal/backends/sqlite/metadata/registry.go',
    // ...so dropping one must not fail on the SQLite index that was never built.
    from: `		q := fmt.Sprintf("DROP INDEX %q", c.TableName+"_"+name)`,
    to: `		q := fmt.Sprintf("DROP INDEX IF EXISTS %q", c.TableName+"_"+name)`,
  },
  {
    file: 'internal/backends/sqlite/database.go',
    // drop: the collection's side tables go with it (its triggers went with its table).
    from: `	dropped, err := db.r.CollectionDrop(ctx, db.name, params.Name)
`,
    to: `	table := collectionTable(ctx, db.r, db.name, params.Name)
	dropped, err := db.r.CollectionDrop(ctx, db.name, params.Name)
	if dropped {
		dropCollectionPaths(ctx, db.r, db.name, table)
	}
`,
  },
  {
    file: 'internal/handler/common/filter.go',
    // $in of many strings: one set look-up per value instead of a comparison per element
    // (filter_in_medsfhir.go).
    from: `				return false, handlererrors.NewCommandErrorMsgWithArgument(
					handlererrors.ErrBadValue,
					"$in needs an array",
					exprKey,
				)
			}
`,
    to: `				return false, handlererrors.NewCommandErrorMsgWithArgument(
					handlererrors.ErrBadValue,
					"$in needs an array",
					exprKey,
				)
			}

			if set := medsfhirStringSet(arr); set != nil {
				if !medsfhirInSet(fieldValue, set) {
					return false, nil
				}

				continue
			}
`,
  },
  {
    file: 'internal/handler/msg_update.go',
    // Atomic read-modify-write per statement (statement_lock_medsfhir.go).
    from: `func (h *Handler) updateDocument(ctx context.Context, params *common.UpdateParams) (int32, int32, *types.Array, error) {
`,
    to: `func (h *Handler) updateDocument(ctx context.Context, params *common.UpdateParams) (int32, int32, *types.Array, error) {
	defer lockStatement(params.DB, params.Collection)()

`,
  },
  {
    file: 'internal/handler/msg_findandmodify.go',
    from: `func (h *Handler) findAndModifyDocument(ctx context.Context, params *common.FindAndModifyParams) (*findAndModifyResult, error) {
`,
    to: `func (h *Handler) findAndModifyDocument(ctx context.Context, params *common.FindAndModifyParams) (*findAndModifyResult, error) {
	defer lockStatement(params.DB, params.Collection)()

`,
  },
  {
    file: 'internal/handler/msg_delete.go',
    from: `		d, err = h.execDelete(connCtx, c, &p)
`,
    to: `		d, err = h.lockedDelete(connCtx, c, &p, params.DB, params.Collection)
`,
  },
  {
    file: 'internal/backends/sqlite/backend.go',
    // The exact counts of exact_medsfhir.go ask this backend's registry (the engine runs one backend).
    from: `	r, err := metadata.NewRegistry(params.URI, params.BatchSize, params.L, params.P)
	if err != nil {
		return nil, err
	}
`,
    to: `	r, err := metadata.NewRegistry(params.URI, params.BatchSize, params.L, params.P)
	if err != nil {
		return nil, err
	}

	exactRegistry = r
`,
  },
  {
    file: 'internal/handler/msg_count.go',
    // count: answered in SQL when that is exactly MongoDB's answer (count_medsfhir.go).
    from: `	var qp backends.QueryParams
	if !h.DisablePushdown {
		qp.Filter = params.Filter
	}
`,
    to: `	if n, ok := h.exactCountCommand(connCtx, params); ok {
		return documentOpMsg(must.NotFail(types.NewDocument("n", n, "ok", float64(1), exactCountFlag, true)))
	}

	var qp backends.QueryParams
	if !h.DisablePushdown {
		qp.Filter = params.Filter
	}
`,
  },
  {
    file: 'internal/handler/msg_aggregate.go',
    // The driver's countDocuments pipeline: answered in SQL when that is exactly MongoDB's answer.
    from: `	closer := iterator.NewMultiCloser(iterator.CloserFunc(cancel))
`,
    to: `	if docs, ok := h.exactCountPipeline(ctx, dbName, cName, aggregationStages); ok {
		cancel()

		firstBatch := types.MakeArray(len(docs))
		for _, doc := range docs {
			firstBatch.Append(doc)
		}

		return documentOpMsg(
			must.NotFail(types.NewDocument(
				"cursor", must.NotFail(types.NewDocument(
					"firstBatch", firstBatch,
					"id", int64(0),
					"ns", dbName+"."+cName,
				)),
				"ok", float64(1),
				exactCountFlag, true,
			)),
		)
	}

	closer := iterator.NewMultiCloser(iterator.CloserFunc(cancel))
`,
  },
  {
    file: 'internal/backends/sqlite/collection.go',
    // Query: a find with a sort and a limit answered with its first rows only, chosen in SQL, when
    // they are exactly MongoDB's (order_medsfhir.go).
    from: `	q := prepareSelectClause(meta.TableName, params.Comment, meta.Capped(), params.OnlyRecordIDs)
`,
    to: `	if iter, ok := idOrderedQuery(ctx, db, meta, params); ok {
		return &backends.QueryResult{Iter: iter}, nil
	}

	if iter, ok := orderedQuery(ctx, db, meta, params); ok {
		return &backends.QueryResult{Iter: iter}, nil
	}

	q := prepareSelectClause(meta.TableName, params.Comment, meta.Capped(), params.OnlyRecordIDs)
`,
  },
  {
    file: 'internal/handler/msg_find.go',
    // find: its sort and limit + skip passed to the backend's Query (sort_medsfhir.go).
    from: `	queryRes, err := coll.Query(ctx, qp)
`,
    to: `	order := h.medsfhirOrder(params, qp, capped)
	queryRes, err := coll.Query(medsfhirFieldsContext(medsfhirOrderContext(ctx, order), params), qp)
`,
  },
  {
    file: 'internal/backends/sqlite/query_iterator.go',
    // Only the fields the find needs are decoded (fields_medsfhir.go).
    from: `		if doc, err = sjson.Unmarshal(b); err != nil {
`,
    to: `		if doc, err = sjson.UnmarshalFields(b, medsfhirWanted(iter.ctx)); err != nil {
`,
  },
  {
    file: 'internal/handler/msg_find.go',
    // ...not sorted again when the backend returned the candidates in order (idorder_medsfhir.go).
    from: `	iter, err := h.makeFindIter(queryRes.Iter, closer, params)
`,
    to: `	iter, err := h.makeFindIter(queryRes.Iter, closer, unsortedWhenSorted(params, order))
`,
  },
  {
    file: 'internal/handler/msg_find.go',
    // ...and its answer flagged when the backend chose the rows in SQL.
    from: `	return documentOpMsg(
		must.NotFail(types.NewDocument(
			"cursor", must.NotFail(types.NewDocument(
				"firstBatch", firstBatch,
				"id", cursorID,
				"ns", params.DB+"."+params.Collection,
			)),
			"ok", float64(1),
		)),
	)
`,
    to: `	return documentOpMsg(findAnswer(firstBatch, cursorID, params.DB+"."+params.Collection, order))
`,
  },
  {
    file: 'ferretdb/ferretdb.go',
    // find and aggregate strip dotted keys from what they pass to the backend unless this is set.
    from: `			CappedCleanupPercentage: 10,
`,
    to: `			CappedCleanupPercentage: 10,
			EnableNestedPushdown:    true,
`,
  },
];

/**
 * Each edit of the SQLite driver's sources (modernc.org/sqlite, the one FerretDB uses). A text argument
 * of an SQL function reached Go through libc.GoString, which finds its end one byte at a time: our
 * functions take whole stored documents (a row check, a sort key, and every multikey path of every
 * insert through the side tables' triggers), and that scan was a fifth of the engine's CPU on an
 * indexed search at 100k. SQLite knows the length (sqlite3_value_bytes), so the text is copied at once.
 */
const SQLITE_EDITS = [
  {
    file: 'sqlite.go',
    from: `\t\t\targs[i] = libc.GoString(sqlite3.Xsqlite3_value_text(tls, valPtr))\n`,
    to:
      `\t\t\ttext := sqlite3.Xsqlite3_value_text(tls, valPtr)\n` +
      `\t\t\tsize := sqlite3.Xsqlite3_value_bytes(tls, valPtr)\n` +
      `\t\t\tif text == 0 || size == 0 {\n\t\t\t\targs[i] = ""\n\t\t\t} else {\n` +
      `\t\t\t\targs[i] = string((*libc.RawMem)(unsafe.Pointer(text))[:size:size])\n\t\t\t}\n`,
  },
];

/** Our files added to FerretDB's packages: the file under tools/ferretdb/patch and its package directory. */
const PATCH_FILES = [
  ['pushdown_medsfhir.go', 'internal/backends/sqlite'],
  ['paths_medsfhir.go', 'internal/backends/sqlite'],
  ['statement_lock_medsfhir.go', 'internal/handler'],
  ['exact_medsfhir.go', 'internal/backends/sqlite'],
  ['hook_medsfhir.go', 'internal/backends'],
  ['count_medsfhir.go', 'internal/handler'],
  ['order_medsfhir.go', 'internal/backends/sqlite'],
  ['idorder_medsfhir.go', 'internal/backends/sqlite'],
  ['oddid_medsfhir.go', 'internal/backends/sqlite/metadata'],
  ['sort_medsfhir.go', 'internal/handler'],
  ['fields_medsfhir.go', 'internal/handler'],
  ['filter_in_medsfhir.go', 'internal/handler/common'],
  ['debug_log_medsfhir.go', 'internal/util/fsql'],
  ['decode_medsfhir.go', 'internal/handler/sjson'],
  ['insert_medsfhir.go', 'internal/backends/sqlite'],
];

/** The version of `module` that tools/ferretdb/go.mod requires. */
function requiredVersion(module) {
  const escaped = module.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`${escaped} (v[^\\s]+)`).exec(readFileSync(join(source, 'go.mod'), 'utf8'));
  if (!match) throw new Error(`tools/ferretdb/go.mod does not require ${module}`);
  return match[1];
}

/** A writable copy of `module` (as go.mod requires it) in .cache/`dir`, with `edits` applied. */
function editedCopy(module, dir, edits) {
  const version = requiredVersion(module);
  const info = JSON.parse(
    execFileSync('go', ['mod', 'download', '-json', `${module}@${version}`], { cwd: source, env: goEnv }).toString(),
  );
  const copy = join(cache, dir);
  rmSync(copy, { recursive: true, force: true });
  cpSync(info.Dir, copy, { recursive: true });
  chmodRecursive(copy);
  for (const edit of edits) {
    const file = join(copy, edit.file);
    const text = readFileSync(file, 'utf8');
    if (!text.includes(edit.from))
      throw new Error(`${module} ${version}: ${edit.file} no longer has the code we patch`);
    writeFileSync(file, edit.all ? text.replaceAll(edit.from, edit.to) : text.replace(edit.from, edit.to));
  }
  return copy;
}

/** Writable copies of FerretDB's and the SQLite driver's modules with our edits, and a go.mod/go.sum pair that points to them. */
function preparePatchedModule() {
  const ferretdb = editedCopy(FERRETDB, 'ferretdb-src', EDITS);
  for (const [file, into] of PATCH_FILES) copyFileSync(join(source, 'patch', file), join(ferretdb, into, file));
  const driver = editedCopy(SQLITE_DRIVER, 'sqlite-driver-src', SQLITE_EDITS);

  const build = join(cache, 'engine-build');
  mkdirSync(build, { recursive: true });
  const modFile = join(build, 'go.mod');
  writeFileSync(
    modFile,
    `${readFileSync(join(source, 'go.mod'), 'utf8')}\nreplace ${FERRETDB} => ${ferretdb}\n\nreplace ${SQLITE_DRIVER} => ${driver}\n`,
  );
  copyFileSync(join(source, 'go.sum'), join(build, 'go.sum'));
  return modFile;
}

function chmodRecursive(dir) {
  chmodSync(dir, 0o755);
  execFileSync('chmod', ['-R', 'u+w', dir]);
}

export function buildEngine({ quiet = false } = {}) {
  const inputs = [
    join(source, 'main.go'),
    join(source, 'go.mod'),
    join(source, 'go.sum'),
    ...PATCH_FILES.map(([file]) => join(source, 'patch', file)),
    fileURLToPath(import.meta.url),
  ].map((f) => statSync(f).mtimeMs);
  if (existsSync(engineBinary) && statSync(engineBinary).mtimeMs >= Math.max(...inputs)) {
    return engineBinary;
  }
  if (!quiet) console.error('building the embedded database engine (FerretDB, first run only)...');
  const modFile = preparePatchedModule();
  execFileSync('go', ['build', '-trimpath', `-modfile=${modFile}`, '-o', engineBinary, '.'], {
    cwd: source,
    stdio: quiet ? 'ignore' : 'inherit',
    env: goEnv,
  });
  return engineBinary;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  buildEngine();
  console.error(`engine ready: ${engineBinary}`);
}
