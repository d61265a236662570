package main

// Integral floats in integer fields: Python callers pass sizes computed with
// "/" (e.g. Nova's CreateVirtualDisk_Task capacityKb=1024.0, from
// VMwareImage.file_size_in_kb) and suds writes them as "1024.0"; Go's
// decoder rejects that for an xsd:long and fails the whole call, where
// vCenter accepts it. integralFloats rewrites such values to "1024", guided
// by the request's Go type (field by field, following xsi:type), so only
// integer-typed elements change.

import (
	"bytes"
	"encoding/xml"
	"reflect"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/vim25/types"
)

var integralRe = regexp.MustCompile(`^\s*(-?[0-9]+)\.0*\s*$`)

func integralFloats(body []byte) []byte {
	if !bytes.Contains(body, []byte(".0<")) {
		return body
	}
	typeFunc := types.TypeFunc()
	d := xml.NewDecoder(bytes.NewReader(body))
	var stack []reflect.Type // nil: unknown
	inBody := false
	type edit struct {
		start, end int64
		text       string
	}
	var edits []edit
	var text []byte
	var textEnd int64
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			text = nil
			var typ reflect.Type
			switch {
			case !inBody:
				inBody = t.Name.Local == "Body"
				stack = append(stack, nil)
				continue
			case len(stack) == 2: // Envelope, Body: this is the method element
				typ, _ = typeFunc(t.Name.Local)
			case len(stack) > 0 && stack[len(stack)-1] != nil:
				typ = fieldType(stack[len(stack)-1], t.Name.Local)
			}
			for _, a := range t.Attr {
				if a.Name.Local == "type" && a.Name.Space == "http://www.w3.org/2001/XMLSchema-instance" {
					name := a.Value[strings.LastIndex(a.Value, ":")+1:]
					if x, ok := typeFunc(name); ok {
						typ = x
					}
				}
			}
			stack = append(stack, typ)
		case xml.CharData:
			text = append(text[:0], t...)
			textEnd = d.InputOffset()
		case xml.EndElement:
			if n := len(stack); n > 0 {
				typ := stack[n-1]
				if typ != nil && len(text) != 0 {
					switch typ.Kind() {
					case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
						if m := integralRe.FindSubmatch(text); m != nil {
							edits = append(edits, edit{textEnd - int64(len(text)), textEnd, string(m[1])})
						}
					}
				}
				stack = stack[:n-1]
			}
			text = nil
		}
	}
	if len(edits) == 0 {
		return body
	}
	var out bytes.Buffer
	last := int64(0)
	for _, e := range edits {
		if e.start < last || e.end > int64(len(body)) {
			return body
		}
		out.Write(body[last:e.start])
		out.WriteString(e.text)
		last = e.end
	}
	out.Write(body[last:])
	return out.Bytes()
}

// fieldType is the Go type (pointers and slices removed) of the field a
// struct encodes as element name, looking into embedded structs.
func fieldType(t reflect.Type, name string) reflect.Type {
	for t.Kind() == reflect.Ptr || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			if x := fieldType(f.Type, name); x != nil {
				return x
			}
			continue
		}
		tag := strings.Split(f.Tag.Get("xml"), ",")[0]
		if tag == name {
			ft := f.Type
			for ft.Kind() == reflect.Ptr || (ft.Kind() == reflect.Slice && ft.Elem().Kind() != reflect.Uint8) {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Interface {
				// BaseX: the declared type X unless xsi:type says otherwise
				if x, ok := types.TypeFunc()(ft.Name()); ok {
					return x
				}
				return nil
			}
			return ft
		}
	}
	return nil
}
