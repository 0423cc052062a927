package api

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/hookstep/hookstep/internal/webhook"
)

// headersOut is EndpointHeadersOut.
type headersOut struct {
	Headers   map[string]string `json:"headers"`
	Sensitive []string          `json:"sensitive"`
}

// getEndpointHeaders returns the custom headers; sensitive ones are named
// but their values are not echoed.
func (s *Server) getEndpointHeaders(w http.ResponseWriter, r *http.Request) error {
	_, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	out := headersOut{Headers: map[string]string{}, Sensitive: []string{}}
	for name, v := range ep.Headers {
		if webhook.IsSensitiveHeader(name) {
			out.Sensitive = append(out.Sensitive, name)
		} else {
			out.Headers[name] = v
		}
	}
	slices.Sort(out.Sensitive)
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// putEndpointHeaders replaces all custom headers.
func (s *Server) putEndpointHeaders(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	headers, ok := required[map[string]string](f, "headers")
	if ok {
		checkHeaders(&p, loc("body", "headers"), optionalValues(headers))
	}
	if err := p.Err(); err != nil {
		return err
	}
	app, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	ep, err = s.changeEndpoint(r.Context(), app, ep, func(ep *webhook.Endpoint) (bool, error) {
		ep.Headers = headers
		return false, nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// patchEndpointHeaders sets the headers given with a value and removes
// those given as null or listed in deleteHeaders; names match without
// regard to case.
func (s *Server) patchEndpointHeaders(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	patch := field[map[string]*string](f, "headers")
	if patch.Null {
		p.Add(loc("body", "headers"), "must not be null")
	}
	if patch.Value() {
		checkHeaders(&p, loc("body", "headers"), patch.V)
	}
	deletes := notNull(f, "deleteHeaders", field[[]string](f, "deleteHeaders"))
	if !f.has("headers") && !f.has("deleteHeaders") {
		p.Add(loc("body", "headers"), "field required")
	}
	if err := p.Err(); err != nil {
		return err
	}
	app, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	ep, err = s.changeEndpoint(r.Context(), app, ep, func(ep *webhook.Endpoint) (bool, error) {
		headers := make(map[string]string, len(ep.Headers)+len(patch.V))
		for k, v := range ep.Headers {
			headers[k] = v
		}
		remove := func(name string) {
			for k := range headers {
				if strings.EqualFold(k, name) {
					delete(headers, k)
				}
			}
		}
		for _, name := range deletes.V {
			remove(name)
		}
		for _, name := range slices.Sorted(maps.Keys(patch.V)) { // in order: names may differ only in case
			remove(name)
			if v := patch.V[name]; v != nil {
				headers[name] = *v
			}
		}
		if len(headers) > webhook.MaxHeaders {
			return false, webhook.Invalid(loc("body", "headers"), "at most %d headers", webhook.MaxHeaders)
		}
		ep.Headers = headers
		return false, nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
