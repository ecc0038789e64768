// meds-fhir patch, copied into FerretDB's internal/handler package at build time
// (scripts/build-engine.mjs). The `count` command and the driver's countDocuments pipeline
// (`[{$match: filter}, {$group: {_id: 1, n: {$sum: 1}}}]`) answered by the backend's exact count
// (internal/backends/sqlite/exact_medsfhir.go) when it has one; otherwise FerretDB decodes and counts
// every candidate document, as before.

package handler

import (
	"context"
	"math"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// exactCountFlag is an extra field of an answer counted in SQL (drivers ignore it; tests read it to
// know which path answered).
const exactCountFlag = "medsfhirExactCount"

// exactCountCommand is the `n` of a count command when the backend answers it exactly.
func (h *Handler) exactCountCommand(ctx context.Context, params *common.CountParams) (int32, bool) {
	if h.DisablePushdown || backends.MedsfhirExactCount == nil || params.Skip < 0 || params.Limit < 0 {
		return 0, false
	}
	n, ok, err := backends.MedsfhirExactCount(ctx, params.DB, params.Collection, params.Filter)
	if err != nil || !ok {
		return 0, false
	}
	n = max(n-params.Skip, 0)
	if params.Limit > 0 {
		n = min(n, params.Limit)
	}
	if n > math.MaxInt32 {
		return 0, false
	}
	return int32(n), true
}

// exactCountPipeline answers a pipeline of exactly `{$match: filter}, {$group: {_id: <constant>, <field>:
// {$sum: 1}}}` from the backend's exact count: the group's one document, or none when nothing matches
// (as MongoDB's $group answers).
func (h *Handler) exactCountPipeline(ctx context.Context, dbName, cName string, stages []any) ([]*types.Document, bool) {
	if h.DisablePushdown || backends.MedsfhirExactCount == nil || len(stages) != 2 {
		return nil, false
	}
	match, ok := stages[0].(*types.Document)
	if !ok || match.Len() != 1 {
		return nil, false
	}
	filter, ok := must.NotFail(match.Get(match.Keys()[0])).(*types.Document)
	if !ok || match.Keys()[0] != "$match" {
		return nil, false
	}
	group, ok := stages[1].(*types.Document)
	if !ok || group.Len() != 1 || group.Keys()[0] != "$group" {
		return nil, false
	}
	spec, ok := must.NotFail(group.Get("$group")).(*types.Document)
	if !ok || spec.Len() != 2 || spec.Keys()[0] != "_id" {
		return nil, false
	}
	id := must.NotFail(spec.Get("_id"))
	switch id := id.(type) {
	case int32, int64, float64, types.NullType:
	case string:
		if len(id) > 0 && id[0] == '$' {
			return nil, false // a field path: one group per value
		}
	default:
		return nil, false
	}
	field := spec.Keys()[1]
	sum, ok := must.NotFail(spec.Get(field)).(*types.Document)
	if !ok || sum.Len() != 1 || sum.Keys()[0] != "$sum" || len(field) == 0 || field[0] == '$' {
		return nil, false
	}
	if one, ok := must.NotFail(sum.Get("$sum")).(int32); !ok || one != 1 {
		return nil, false
	}

	n, ok, err := backends.MedsfhirExactCount(ctx, dbName, cName, filter)
	if err != nil || !ok {
		return nil, false
	}
	if n == 0 {
		return nil, true
	}
	var count any = n
	if n <= math.MaxInt32 {
		count = int32(n)
	}
	return []*types.Document{must.NotFail(types.NewDocument("_id", id, field, count))}, true
}
