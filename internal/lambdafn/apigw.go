package lambdafn

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Proxy adapts an http.Handler to API Gateway REST API proxy events (the
// v1 payload). It keeps every header value intact (a value with commas,
// such as a signature list, arrives as sent), decodes base64 bodies, and
// strips the stage from paths that carry it ("/prod/api/v1/app" → the
// handler sees "/api/v1/app").
//
// It is a few dozen lines of our own rather than aws-lambda-go-api-proxy,
// whose v1 adapter cannot strip a stage it does not know in advance and
// adds a JSON copy of the request context to every request's headers.
func Proxy(h http.Handler) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		req, err := toRequest(ctx, ev)
		if err != nil {
			return events.APIGatewayProxyResponse{
				StatusCode: http.StatusBadRequest,
				Headers:    map[string]string{"Content-Type": "application/json"},
				Body:       malformedRequest,
			}, nil
		}
		req = req.WithContext(context.WithValue(req.Context(), stagePathKey{}, StagePath(ev)))
		w := &responseWriter{header: http.Header{}}
		h.ServeHTTP(w, req)
		return w.response(), nil
	}
}

// malformedRequest is the body of the 400 for an event the adapters
// cannot turn into a request (a body flagged base64 that is not).
const malformedRequest = `{"code":"generic_error","detail":"malformed request"}`

type stagePathKey struct{}

// RequestStagePath returns the public path prefix of a request Proxy made
// (see StagePath), for handlers that write links, such as the dashboard.
func RequestStagePath(r *http.Request) string {
	p, _ := r.Context().Value(stagePathKey{}).(string)
	return p
}

// StagePath returns the path prefix under which clients see the API: "/"
// + the stage when requests arrive through the execute-api URL (whose
// paths start with the stage), "" otherwise (a custom domain).
func StagePath(ev events.APIGatewayProxyRequest) string {
	stage := ev.RequestContext.Stage
	if stage == "" || stage == "$default" {
		return ""
	}
	if p := ev.RequestContext.Path; strings.HasPrefix(p, "/"+stage+"/") || p == "/"+stage {
		return "/" + stage
	}
	return ""
}

func toRequest(ctx context.Context, ev events.APIGatewayProxyRequest) (*http.Request, error) {
	body, err := decodeBody(ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return nil, err
	}
	path := ev.Path
	if stage := StagePath(ev); stage != "" && strings.HasPrefix(path, stage+"/") {
		path = strings.TrimPrefix(path, stage)
	}
	q := url.Values{}
	if len(ev.MultiValueQueryStringParameters) > 0 {
		for k, vs := range ev.MultiValueQueryStringParameters {
			q[k] = append(q[k], vs...)
		}
	} else {
		for k, v := range ev.QueryStringParameters {
			q.Set(k, v)
		}
	}
	u := &url.URL{Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, ev.HTTPMethod, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if len(ev.MultiValueHeaders) > 0 {
		for k, vs := range ev.MultiValueHeaders {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
	} else {
		for k, v := range ev.Headers {
			req.Header.Set(k, v)
		}
	}
	req.Host = req.Header.Get("Host")
	if req.Host == "" {
		req.Host = ev.RequestContext.DomainName
	}
	req.RemoteAddr = ev.RequestContext.Identity.SourceIP
	req.RequestURI = u.RequestURI()
	return req, nil
}

// responseWriter collects a handler's response for API Gateway.
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

func (w *responseWriter) response() events.APIGatewayProxyResponse {
	w.WriteHeader(http.StatusOK)
	res := events.APIGatewayProxyResponse{StatusCode: w.status, MultiValueHeaders: w.header}
	res.Body, res.IsBase64Encoded = encodeBody(w.body.Bytes())
	return res
}

// decodeBody returns the request body an event carries, base64 or not.
func decodeBody(body string, isBase64 bool) ([]byte, error) {
	if !isBase64 {
		return []byte(body), nil
	}
	return base64.StdEncoding.DecodeString(body)
}

// encodeBody returns a response body as API Gateway takes it: as is when
// it is text (valid UTF-8), else base64-encoded, since the event is JSON.
func encodeBody(b []byte) (body string, isBase64 bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}
