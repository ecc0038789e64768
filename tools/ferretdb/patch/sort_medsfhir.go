// meds-fhir patch, copied into FerretDB's internal/handler package at build time
// (scripts/build-engine.mjs). FerretDB's find fetches and decodes every candidate document, sorts them
// in Go and only then applies skip and limit: a page of 20 out of 3,000 matches decodes 3,000
// documents. A find with a sort and a limit passes both to the backend (backends.MedsfhirOrder), which
// may answer with just the first limit + skip matches in that order
// (internal/backends/sqlite/order_medsfhir.go) when it can tell that they are exactly those. The
// handler's filter, sort, skip and limit still run on what comes back, so the answer is the same.

package handler

import (
	"context"
	"math"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// idOrderFlag is an extra field of a find's answer that walked the `_id` index in order (tests read it).
const idOrderFlag = "medsfhirIdOrder"

// orderPushedFlag is an extra field of a find's answer whose rows were chosen in SQL (drivers ignore it;
// tests read it to know which path answered).
const orderPushedFlag = "medsfhirOrderPushdown"

// maxOrderedRows bounds limit + skip of a find answered in order, whose documents the backend reads
// into memory (a page deep down a large result goes on as before).
const maxOrderedRows = 1000

// medsfhirOrder is the order a find's Query may answer in, nil when it must return every candidate:
// no limit, no sort, a tailable cursor, a capped collection, or a filter the handler stripped.
func (h *Handler) medsfhirOrder(params *common.FindParams, qp *backends.QueryParams, capped bool) *backends.MedsfhirOrder {
	if h.DisablePushdown || params.Tailable || capped || params.Limit <= 0 || params.Skip < 0 ||
		params.Limit > maxOrderedRows || params.Skip > maxOrderedRows || params.Sort.Len() == 0 ||
		qp.Sort != nil || qp.Limit != 0 || qp.Filter != params.Filter {
		return nil
	}
	for _, key := range params.Sort.Keys() {
		if key == "$natural" {
			return nil
		}
	}
	return &backends.MedsfhirOrder{Sort: params.Sort, Rows: min(params.Limit+params.Skip, math.MaxInt32)}
}

// medsfhirOrderContext is ctx carrying order (ctx itself when order is nil).
func medsfhirOrderContext(ctx context.Context, order *backends.MedsfhirOrder) context.Context {
	if order == nil {
		return ctx
	}
	return backends.WithMedsfhirOrder(ctx, order)
}

// findAnswer is the find command's answer, flagged when its rows were chosen in SQL.
func findAnswer(firstBatch *types.Array, cursorID int64, ns string, order *backends.MedsfhirOrder) *types.Document {
	answer := must.NotFail(types.NewDocument(
		"cursor", must.NotFail(types.NewDocument(
			"firstBatch", firstBatch,
			"id", cursorID,
			"ns", ns,
		)),
		"ok", float64(1),
	))
	if order != nil && order.Pushed {
		answer.Set(orderPushedFlag, true)
	}
	if order != nil && order.Sorted {
		answer.Set(idOrderFlag, true)
	}
	return answer
}

// unsortedWhenSorted is params without its sort when the backend returned the candidates in that order
// (the handler's sort would read every one of them before the first is answered).
func unsortedWhenSorted(params *common.FindParams, order *backends.MedsfhirOrder) *common.FindParams {
	if order == nil || !order.Sorted {
		return params
	}
	unsorted := *params
	unsorted.Sort = nil
	return &unsorted
}
