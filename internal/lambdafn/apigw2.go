package lambdafn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// ProxyAny adapts an http.Handler to both payloads API Gateway sends a
// proxy integration, so the api function can sit behind a REST API (the v1
// payload, also an HTTP API's format 1.0) or an HTTP API (format 2.0). It
// tells them apart by the event's "version", serves the request through
// Proxy or ProxyV2, and answers in the matching response shape.
//
// An event that is neither payload is an error (the invocation fails, and
// API Gateway answers 502), not a request made up from zero values.
func ProxyAny(h http.Handler) func(context.Context, json.RawMessage) (any, error) {
	v1, v2 := Proxy(h), ProxyV2(h)
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("api: decode API Gateway event: %w", err)
		}
		switch probe.Version {
		case "2.0":
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("api: decode HTTP API event: %w", err)
			}
			if ev.RequestContext.HTTP.Method == "" {
				return nil, errNotAProxyEvent
			}
			return v2(ctx, ev)
		case "", "1.0":
			var ev events.APIGatewayProxyRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("api: decode REST API event: %w", err)
			}
			if ev.HTTPMethod == "" {
				return nil, errNotAProxyEvent
			}
			return v1(ctx, ev)
		default:
			return nil, fmt.Errorf("api: API Gateway payload version %q is not supported", probe.Version)
		}
	}
}

var errNotAProxyEvent = errors.New("api: event is not an API Gateway proxy request (no HTTP method)")

// ProxyV2 adapts an http.Handler to API Gateway HTTP API events (payload
// format 2.0). Like Proxy it keeps header values intact: an HTTP API
// lowercases header names and joins a repeated header's values with
// commas into one, and the handler gets that one value as sent, never
// split on its commas (a signature list such as "v1,abc= v1,def=" stays
// whole). Cookies, which the event carries apart, become the Cookie
// header again; the response's Set-Cookie headers go back as "cookies",
// and its other repeated headers are joined with commas, the only form
// the 2.0 response takes.
//
// It is our own rather than aws-lambda-go-api-proxy's v2 adapter, which
// splits every header value on commas.
func ProxyV2(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		req, err := toRequestV2(ctx, ev)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusBadRequest,
				Headers:    map[string]string{"Content-Type": "application/json"},
				Body:       malformedRequest,
			}, nil
		}
		req = req.WithContext(context.WithValue(req.Context(), stagePathKey{}, StagePathV2(ev)))
		w := &responseWriter{header: http.Header{}}
		h.ServeHTTP(w, req)
		return w.responseV2(), nil
	}
}

// StagePathV2 is StagePath for HTTP API events: "/" + the stage when a
// named stage's requests arrive through the execute-api URL, whose paths
// start with it; "" for the $default stage, which is served at the root,
// and through a custom domain, whose API mapping picks the stage without
// a path segment naming it.
func StagePathV2(ev events.APIGatewayV2HTTPRequest) string {
	stage := ev.RequestContext.Stage
	if stage == "" || stage == "$default" {
		return ""
	}
	if d := ev.RequestContext.DomainName; d != "" && !strings.Contains(d, ".execute-api.") {
		return ""
	}
	if p := ev.RawPath; p == "/"+stage || strings.HasPrefix(p, "/"+stage+"/") {
		return "/" + stage
	}
	return ""
}

func toRequestV2(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	body, err := decodeBody(ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return nil, err
	}
	// An HTTP API sends rawPath percent-decoded ("/a%20b" arrives as
	// "/a b"), so it is a URL's Path, which String encodes again; a
	// decoded "?" or "#" stays in the path. rawQueryString arrives as the
	// client sent it, repeated keys and all.
	path := ev.RawPath
	if stage := StagePathV2(ev); stage != "" {
		if path = strings.TrimPrefix(path, stage); path == "" {
			path = "/"
		}
	}
	u := &url.URL{Path: path, RawQuery: ev.RawQueryString}
	req, err := http.NewRequestWithContext(ctx, ev.RequestContext.HTTP.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range ev.Headers {
		req.Header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	req.Host = req.Header.Get("Host")
	if req.Host == "" {
		req.Host = ev.RequestContext.DomainName
	}
	req.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	req.RequestURI = req.URL.RequestURI()
	return req, nil
}

func (w *responseWriter) responseV2() events.APIGatewayV2HTTPResponse {
	w.WriteHeader(http.StatusOK)
	res := events.APIGatewayV2HTTPResponse{StatusCode: w.status, Headers: make(map[string]string, len(w.header))}
	for k, vs := range w.header {
		switch {
		case len(vs) == 0:
		case http.CanonicalHeaderKey(k) == "Set-Cookie":
			res.Cookies = append(res.Cookies, vs...)
		default:
			res.Headers[k] = strings.Join(vs, ",")
		}
	}
	res.Body, res.IsBase64Encoded = encodeBody(w.body.Bytes())
	return res
}
