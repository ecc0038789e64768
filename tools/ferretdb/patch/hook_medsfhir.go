// meds-fhir patch, copied into FerretDB's internal/backends package at build time
// (scripts/build-engine.mjs): the hook by which the handler asks the SQLite backend for an exact count
// (internal/backends/sqlite/exact_medsfhir.go), and the order and row count a find lets it answer
// in SQL (internal/backends/sqlite/order_medsfhir.go), without the handler depending on that backend.

package backends

import (
	"context"

	"github.com/FerretDB/FerretDB/internal/types"
)

// MedsfhirExactCount counts the documents of a collection that match filter (nil: all of them) when the
// backend can answer exactly what MongoDB answers; ok is false when it cannot, and the caller counts
// the documents itself. Nil when the backend has no such count.
var MedsfhirExactCount func(ctx context.Context, dbName, collName string, filter *types.Document) (n int64, ok bool, err error)

// MedsfhirOrder is the sort and the number of rows (limit + skip) of a find that the handler lets the
// backend answer in order (internal/handler/sort_medsfhir.go): the backend may return only the first
// Rows documents of the matches in that order, instead of every candidate. The handler still filters,
// sorts, skips and limits what it gets. Pushed is set by the backend when it did so. Sorted is set by
// the backend when it returns every candidate, in the sort's order (a walk of the `_id` index,
// internal/backends/sqlite/idorder_medsfhir.go): the handler then filters, skips and limits without
// sorting, so it reads no further than the limit.
type MedsfhirOrder struct {
	Sort   *types.Document
	Rows   int64
	Pushed bool
	Sorted bool
}

type medsfhirOrderKey struct{}

// WithMedsfhirOrder is ctx carrying order to the backend's Query.
func WithMedsfhirOrder(ctx context.Context, order *MedsfhirOrder) context.Context {
	return context.WithValue(ctx, medsfhirOrderKey{}, order)
}

// MedsfhirOrderFrom is the order a find's Query may answer in, nil when there is none.
func MedsfhirOrderFrom(ctx context.Context) *MedsfhirOrder {
	order, _ := ctx.Value(medsfhirOrderKey{}).(*MedsfhirOrder)
	return order
}

// MedsfhirFields is the top-level fields a find needs decoded from each stored document: those its
// projection keeps, its filter tests and its sort reads (internal/handler/fields_medsfhir.go). The
// backend leaves the others undecoded. A field maps to the members it needs of an object value, or
// to nil when it needs all of the value. Nil when every field is needed.
type MedsfhirFields map[string]map[string]struct{}

type medsfhirFieldsKey struct{}

// WithMedsfhirFields is ctx carrying the fields a find's Query must decode.
func WithMedsfhirFields(ctx context.Context, fields MedsfhirFields) context.Context {
	return context.WithValue(ctx, medsfhirFieldsKey{}, fields)
}

// MedsfhirFieldsFrom is the fields a find's Query must decode, nil when it must decode every field.
func MedsfhirFieldsFrom(ctx context.Context) MedsfhirFields {
	fields, _ := ctx.Value(medsfhirFieldsKey{}).(MedsfhirFields)
	return fields
}
