// meds-fhir patch, copied into FerretDB's internal/handler package at build time
// (scripts/build-engine.mjs): the top-level fields a find needs from each stored document, so that
// the backend decodes only those. A FHIR server's documents carry their search index beside the
// resource (often as large as it), which reads of resources project away: decoding it anyway was
// most of what a projected find cost the engine.

package handler

import (
	"context"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// medsfhirFieldsContext is ctx carrying the fields the find needs decoded (ctx itself when it needs all).
func medsfhirFieldsContext(ctx context.Context, params *common.FindParams) context.Context {
	fields := medsfhirFields(params)
	if fields == nil {
		return ctx
	}
	return backends.WithMedsfhirFields(ctx, fields)
}

// medsfhirFields is the fields of the projection, the filter and the sort, with `_id`, to two levels; nil
// (every field) unless the projection only includes fields and every key is one this reads plainly.
func medsfhirFields(params *common.FindParams) backends.MedsfhirFields {
	if params.Projection == nil || params.Projection.Len() == 0 {
		return nil
	}
	// FerretDB's own reading of the projection (validated again before it projects): an exclusion, or
	// `{_id: 0}` alone, keeps every other field; an invalid one is the handler's to refuse.
	validated, inclusion, err := common.ValidateProjection(params.Projection)
	if err != nil || !inclusion {
		return nil
	}
	fields := backends.MedsfhirFields{"_id": nil}
	for _, key := range validated.Keys() {
		if key != "_id" && !medsfhirAddTopLevel(fields, key) {
			return nil
		}
	}
	if !medsfhirAddFilterFields(fields, params.Filter) {
		return nil
	}
	if params.Sort != nil {
		for _, key := range params.Sort.Keys() {
			if !medsfhirAddTopLevel(fields, key) {
				return nil
			}
		}
	}
	return fields
}

// medsfhirAddTopLevel adds the first two segments of a field path (the first alone: the whole
// value); false for an operator or an empty path.
func medsfhirAddTopLevel(fields backends.MedsfhirFields, key string) bool {
	top, rest, nested := strings.Cut(key, ".")
	if top == "" || strings.HasPrefix(top, "$") {
		return false
	}
	member, _, _ := strings.Cut(rest, ".")
	members, seen := fields[top]
	switch {
	case !nested || member == "" || strings.HasPrefix(member, "$"):
		fields[top] = nil
	case seen && members == nil:
		// The whole value is needed already.
	case seen:
		members[member] = struct{}{}
	default:
		fields[top] = map[string]struct{}{member: {}}
	}
	return true
}

// medsfhirAddFilterFields adds the fields a filter tests, through $and, $or and $nor; false for any other
// top-level operator ($expr, $where, $text...), whose fields cannot be told.
func medsfhirAddFilterFields(fields backends.MedsfhirFields, filter *types.Document) bool {
	if filter == nil {
		return true
	}
	for _, key := range filter.Keys() {
		switch key {
		case "$and", "$or", "$nor":
			clauses, ok := must.NotFail(filter.Get(key)).(*types.Array)
			if !ok {
				return false
			}
			for i := 0; i < clauses.Len(); i++ {
				clause, ok := must.NotFail(clauses.Get(i)).(*types.Document)
				if !ok || !medsfhirAddFilterFields(fields, clause) {
					return false
				}
			}
		case "$comment":
		default:
			if !medsfhirAddTopLevel(fields, key) {
				return false
			}
		}
	}
	return true
}
