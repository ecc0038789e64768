// meds-fhir patch, copied into FerretDB's internal/handler/common package at build time
// (scripts/build-engine.mjs). FerretDB tests `{field: {$in: [...]}}` on each document by comparing its
// value with every element of the list in turn. A practitioner's searches carry the compartments of
// every patient they reach (thousands) as one such `$in`, so each candidate document cost thousands
// of comparisons: most of such a search's time. A list of strings only is tested through a set,
// made once per list and kept for the lists in use.

package common

import (
	"sync"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// medsfhirSetMin is the shortest `$in` list tested through a set.
const medsfhirSetMin = 16

// medsfhirSetsKept is how many lists' sets are kept (each entry holds its list, so that its address is
// not reused by another list while it is cached).
const medsfhirSetsKept = 32

type medsfhirSetEntry struct {
	list *types.Array
	// set is nil when the list holds something other than strings (then it is compared as before).
	set map[string]struct{}
}

var medsfhirSets struct {
	sync.Mutex
	entries [medsfhirSetsKept]medsfhirSetEntry
	next    int
}

// medsfhirStringSet is the set of the list's strings when every element is one (and the list is long
// enough to be worth it); nil otherwise.
func medsfhirStringSet(list *types.Array) map[string]struct{} {
	if list.Len() < medsfhirSetMin {
		return nil
	}
	medsfhirSets.Lock()
	defer medsfhirSets.Unlock()
	for _, e := range medsfhirSets.entries {
		if e.list == list {
			return e.set
		}
	}
	set := make(map[string]struct{}, list.Len())
	for i := 0; i < list.Len(); i++ {
		s, ok := must.NotFail(list.Get(i)).(string)
		if !ok {
			set = nil
			break
		}
		set[s] = struct{}{}
	}
	medsfhirSets.entries[medsfhirSets.next] = medsfhirSetEntry{list: list, set: set}
	medsfhirSets.next = (medsfhirSets.next + 1) % medsfhirSetsKept
	return set
}

// medsfhirInSet is what comparing the value with each string of the set gives (types.Compare): a
// string equal to one of them, or an array with such a string among its elements. Nothing else
// (a missing field is null, a nested array is not looked into) equals a string.
func medsfhirInSet(value any, set map[string]struct{}) bool {
	switch v := value.(type) {
	case string:
		_, ok := set[v]
		return ok
	case *types.Array:
		for i := 0; i < v.Len(); i++ {
			if s, ok := must.NotFail(v.Get(i)).(string); ok {
				if _, ok := set[s]; ok {
					return true
				}
			}
		}
	}
	return false
}
