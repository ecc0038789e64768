// meds-fhir patch, copied into FerretDB's internal/handler/sjson package at build time
// (scripts/build-engine.mjs).
//
// FerretDB decodes a stored document level by level: each object and array, and each string, is
// handed to a new encoding/json Decoder, which copies every member's bytes out before the next level
// decodes them again. That was about half of the engine's CPU on reads of FHIR resources, which are
// deep. These functions split an object or an array in one scan of its bytes, without copies, and
// read a string without escapes directly; anything they do not expect (escapes in a key, malformed
// text) is left to FerretDB's own decoding, which keeps its answers and its errors.

package sjson

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// plainString is the value of a JSON string literal without escapes, as encoding/json reads it: ok is
// false when data is not such a literal (escapes, control characters, invalid UTF-8).
func plainString(data []byte) (string, bool) {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return "", false
	}

	inner := data[1 : len(data)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}

	if !utf8.Valid(inner) {
		return "", false
	}

	return string(inner), true
}

// splitObject is the members of a JSON object, keyed as encoding/json's map decoding keys them (a
// repeated key: the last one); ok is false when data is not an object this scan reads.
func splitObject(data []byte) (map[string]json.RawMessage, bool) {
	i := skipBlank(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}

	members := map[string]json.RawMessage{}

	i = skipBlank(data, i+1)
	if i < len(data) && data[i] == '}' {
		return members, skipBlank(data, i+1) == len(data)
	}

	for {
		end, ok := valueEnd(data, i)
		if !ok || data[i] != '"' {
			return nil, false
		}

		key, ok := plainString(data[i:end])
		if !ok {
			return nil, false
		}

		i = skipBlank(data, end)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}

		i = skipBlank(data, i+1)
		if end, ok = valueEnd(data, i); !ok {
			return nil, false
		}

		members[key] = data[i:end]

		if i = skipBlank(data, end); i >= len(data) {
			return nil, false
		}

		switch data[i] {
		case ',':
			i = skipBlank(data, i+1)
		case '}':
			return members, skipBlank(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

// splitArray is the items of a JSON array; ok is false when data is not an array this scan reads.
func splitArray(data []byte) ([]json.RawMessage, bool) {
	i := skipBlank(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, false
	}

	items := []json.RawMessage{}

	i = skipBlank(data, i+1)
	if i < len(data) && data[i] == ']' {
		return items, skipBlank(data, i+1) == len(data)
	}

	for {
		end, ok := valueEnd(data, i)
		if !ok {
			return nil, false
		}

		items = append(items, data[i:end])

		if i = skipBlank(data, end); i >= len(data) {
			return nil, false
		}

		switch data[i] {
		case ',':
			i = skipBlank(data, i+1)
		case ']':
			return items, skipBlank(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

// valueEnd is the index just past the JSON value starting at data[i]. It only finds the value's end
// (strings, nesting); the value's own decoder checks its content.
func valueEnd(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}

	switch data[i] {
	case '"':
		for j := i + 1; j < len(data); j++ {
			switch data[j] {
			case '\\':
				j++
			case '"':
				return j + 1, true
			}
		}

		return 0, false
	case '{', '[':
		depth := 0

		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end, ok := valueEnd(data, j)
				if !ok {
					return 0, false
				}

				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1, true
				}
			}
		}

		return 0, false
	default:
		j := i
		for j < len(data) && !isDelimiter(data[j]) {
			j++
		}

		return j, j > i
	}
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ':', ' ', '\t', '\n', '\r':
		return true
	}

	return false
}

func skipBlank(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}

	return i
}

// splitStored is a stored document's fields and its schema (the `$s` field, still among the fields),
// as sjson.Unmarshal reads them: in one scan when it can, else with FerretDB's own decoding.
func splitStored(data []byte) (map[string]json.RawMessage, schema, error) {
	if fields, ok := splitObject(data); ok {
		if sch, ok := readSchema(fields["$s"]); ok {
			return fields, *sch, nil
		}
	}

	var fields map[string]json.RawMessage
	r := bytes.NewReader(data)
	dec := json.NewDecoder(r)

	if err := dec.Decode(&fields); err != nil {
		return nil, schema{}, lazyerrors.Error(err)
	}

	if err := checkConsumed(dec, r); err != nil {
		return nil, schema{}, lazyerrors.Error(err)
	}

	jsch, ok := fields["$s"]
	if !ok {
		return nil, schema{}, lazyerrors.Errorf("schema is not set")
	}

	var sch schema
	r = bytes.NewReader(jsch)
	dec = json.NewDecoder(r)
	dec.DisallowUnknownFields()

	if err := dec.Decode(&sch); err != nil {
		return nil, schema{}, lazyerrors.Error(err)
	}

	if err := checkConsumed(dec, r); err != nil {
		return nil, schema{}, lazyerrors.Error(err)
	}

	return fields, sch, nil
}

var jsonNull = []byte("null")

// readSchema is a schema as encoding/json decodes it into the schema type (unknown fields refused);
// ok is false for anything this scan does not read (a binary subtype, escapes), left to encoding/json.
func readSchema(data []byte) (*schema, bool) {
	if data == nil {
		return nil, false
	}

	members, ok := splitObject(data)
	if !ok {
		return nil, false
	}

	sch := new(schema)

	for key, value := range members {
		switch key {
		case "p":
			if bytes.Equal(value, jsonNull) {
				continue
			}

			properties, ok := splitObject(value)
			if !ok {
				return nil, false
			}

			sch.Properties = make(map[string]*elem, len(properties))

			for name, raw := range properties {
				if sch.Properties[name], ok = readElem(raw); !ok {
					return nil, false
				}
			}
		case "$k":
			if bytes.Equal(value, jsonNull) {
				continue
			}

			items, ok := splitArray(value)
			if !ok {
				return nil, false
			}

			sch.Keys = make([]string, len(items))

			for i, item := range items {
				if sch.Keys[i], ok = plainString(item); !ok {
					return nil, false
				}
			}
		default:
			return nil, false
		}
	}

	return sch, true
}

// readElem is one schema element, as readSchema reads schemas; `null` is a nil element.
func readElem(data []byte) (*elem, bool) {
	if bytes.Equal(data, jsonNull) {
		return nil, true
	}

	members, ok := splitObject(data)
	if !ok {
		return nil, false
	}

	e := new(elem)

	for key, value := range members {
		if bytes.Equal(value, jsonNull) {
			continue
		}

		switch key {
		case "t":
			t, ok := plainString(value)
			if !ok {
				return nil, false
			}

			e.Type = elemType(t)
		case "$s":
			if e.Schema, ok = readSchema(value); !ok {
				return nil, false
			}
		case "o":
			o, ok := plainString(value)
			if !ok {
				return nil, false
			}

			e.Options = &o
		case "i":
			items, ok := splitArray(value)
			if !ok {
				return nil, false
			}

			e.Items = make([]*elem, len(items))

			for i, item := range items {
				if e.Items[i], ok = readElem(item); !ok {
					return nil, false
				}
			}
		default:
			return nil, false
		}
	}

	return e, true
}

// UnmarshalFields is Unmarshal of the top-level fields in keep only (nil: of every field), and of an
// object value, of the members keep lists for it (nil: all of them): the rest is left out of the
// document, undecoded. A find that projects a FHIR resource's search index away, or reads one value
// of it, then does not decode the whole index (internal/handler/fields_medsfhir.go).
func UnmarshalFields(data []byte, keep map[string]map[string]struct{}) (*types.Document, error) {
	if keep == nil {
		return Unmarshal(data)
	}

	v, sch, err := splitStored(data)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	delete(v, "$s")

	if len(sch.Keys) != len(v) {
		return nil, lazyerrors.Errorf(
			"sjson.UnmarshalFields: the data must have the same number of schema keys and document fields (keys: %d, fields: %d)",
			len(sch.Keys), len(v),
		)
	}

	d := must.NotFail(types.NewDocument())

	for _, key := range sch.Keys {
		b, ok := v[key]
		if !ok {
			return nil, lazyerrors.Errorf("sjson.UnmarshalFields: missing key %q", key)
		}

		members, wanted := keep[key]
		if !wanted {
			continue
		}

		value, err := unmarshalMembers(b, sch.Properties[key], members)
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		d.Set(key, value)
	}

	return d, nil
}

// unmarshalMembers is unmarshalSingleValue, but for an object of which only the given members (nil:
// all) are decoded. Anything this does not read plainly is left to unmarshalSingleValue whole.
func unmarshalMembers(data json.RawMessage, sch *elem, members map[string]struct{}) (any, error) {
	if members == nil || sch == nil || sch.Type != elemTypeObject || sch.Schema == nil || bytes.Equal(data, []byte("null")) {
		return unmarshalSingleValue(data, sch)
	}

	raw, ok := splitObject(data)
	if !ok || len(raw) != len(sch.Schema.Keys) {
		return unmarshalSingleValue(data, sch)
	}

	d := must.NotFail(types.NewDocument())

	for _, key := range sch.Schema.Keys {
		if _, wanted := members[key]; !wanted {
			continue
		}

		b, ok := raw[key]
		if !ok {
			return unmarshalSingleValue(data, sch)
		}

		value, err := unmarshalSingleValue(b, sch.Schema.Properties[key])
		if err != nil {
			return nil, lazyerrors.Error(err)
		}

		d.Set(key, value)
	}

	return d, nil
}
