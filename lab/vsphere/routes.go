package main

// Request rewriting before the simulator decodes a SOAP request.
//
// routes: SOAP methods the lab answers on an object of its own. The
// simulator dispatches a call to the registered object named by the
// request's _this. Where the lab cannot replace the stock object (the
// simulator type-asserts it elsewhere), routeMethods rewrites _this of the
// listed methods to the lab object.
//
// Times: xsd:dateTime allows no time zone, and suds (oslo.vmware) sends
// Python's naive datetimes that way (e.g. Extension.lastHeartbeatTime in
// RegisterExtension); Go's decoder wants RFC 3339 and fails the whole call.
// vCenter accepts them; the lab reads them as UTC.
//
// Integral floats in integer fields: see numbers.go.

import (
	"bytes"
	"io"
	"net/http"
	"regexp"

	"github.com/vmware/govmomi/vim25/types"
)

var routes = map[string]types.ManagedObjectReference{}

var (
	// The first element in the SOAP Body is the method.
	methodRe = regexp.MustCompile(`<(?:[A-Za-z0-9_.-]+:)?Body\b[^>]*>\s*<(?:[A-Za-z0-9_.-]+:)?([A-Za-z0-9_]+)[\s/>]`)
	naiveRe  = regexp.MustCompile(`>(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)<`)
	thisRe   = regexp.MustCompile(`(<(?:[A-Za-z0-9_.-]+:)?_this\b[^>]*>)[^<]*(</(?:[A-Za-z0-9_.-]+:)?_this>)`)
)

func routeMethods(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && (r.URL.Path == "/sdk" || r.URL.Path == "/sdk/vimService") {
			body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
			_ = r.Body.Close()
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			if m := methodRe.FindSubmatch(body); m != nil {
				if ref, ok := routes[string(m[1])]; ok {
					body = thisRe.ReplaceAll(body, []byte("${1}"+ref.Value+"${2}"))
				}
			}
			body = integralFloats(body)
			body = naiveRe.ReplaceAll(body, []byte(">${1}Z<"))
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		next.ServeHTTP(w, r)
	})
}
