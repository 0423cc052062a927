package stack_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/infra/stack"
)

// TestHTTPAPI checks the HTTP API: one $default route proxying every
// request to the api function with payload format 2.0, and a $default
// stage that throttles and writes access logs.
func TestHTTPAPI(t *testing.T) {
	s := httpStack()
	apiFnID, _ := s.tmpl.function(t, "api")
	httpAPIID, _ := s.tmpl.only(t, "AWS::ApiGatewayV2::Api")
	integrationID, _ := s.tmpl.only(t, "AWS::ApiGatewayV2::Integration")

	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Api"), map[string]any{
			"Name":         "Hookstep-api", // from the stack's name, as the REST API's
			"ProtocolType": "HTTP",
		})
	})
	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Integration"), map[string]any{
			"ApiId":                ref(httpAPIID),
			"IntegrationType":      "AWS_PROXY",
			"IntegrationUri":       getAttArn(apiFnID),
			"PayloadFormatVersion": "2.0",
		})
	})
	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Route"), map[string]any{
			"ApiId":    ref(httpAPIID),
			"RouteKey": "$default", // every method and path
			"Target":   map[string]any{"Fn::Join": []any{"", []any{"integrations/", ref(integrationID)}}},
		})
	})
	// API Gateway may invoke the function for any route and stage of
	// this API, and no other.
	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::Lambda::Permission"), map[string]any{
			"Action":       "lambda:InvokeFunction",
			"FunctionName": getAttArn(apiFnID),
			"Principal":    "apigateway.amazonaws.com",
			"SourceArn": map[string]any{"Fn::Join": []any{"", []any{
				"arn:", ref("AWS::Partition"), ":execute-api:", ref("AWS::Region"), ":", ref("AWS::AccountId"), ":", ref(httpAPIID), "/*/*",
			}}},
		})
	})

	_, stage := s.tmpl.only(t, "AWS::ApiGatewayV2::Stage")
	p := stage.Properties
	if p["StageName"] != "$default" || p["AutoDeploy"] != true {
		t.Errorf("stage: got %v, auto-deploy %v; want $default, auto-deployed", p["StageName"], p["AutoDeploy"])
	}
	if got, want := p["DefaultRouteSettings"], map[string]any{
		"ThrottlingRateLimit": stack.DefaultThrottleRate, "ThrottlingBurstLimit": stack.DefaultThrottleBurst,
	}; !jsonEqual(got, want) {
		t.Errorf("DefaultRouteSettings: got %v, want %v", got, want)
	}
	logs, _ := p["AccessLogSettings"].(map[string]any)
	if !jsonEqual(logs["DestinationArn"], getAttArn(logGroupID(t, s, "ApiAccessLogs"))) {
		t.Errorf("access logs go to %v, want the ApiAccessLogs group", logs["DestinationArn"])
	}
	var format map[string]string
	if err := json.Unmarshal([]byte(logs["Format"].(string)), &format); err != nil {
		t.Fatalf("access log format is not JSON: %v", err)
	}
	// A request id is required; a route key, not a REST resource path.
	for key, want := range map[string]string{"requestId": "$context.requestId", "status": "$context.status", "routeKey": "$context.routeKey"} {
		if format[key] != want {
			t.Errorf("access log %s: got %q, want %q", key, format[key], want)
		}
	}
	for key, v := range format {
		if strings.Contains(v, "resourcePath") || strings.Contains(v, "identity.caller") {
			t.Errorf("access log %s: %s is a REST API variable", key, v)
		}
	}
}

func TestHTTPAPIThrottle(t *testing.T) {
	s := synth(t, stack.Props{API: stack.APIHTTP, ThrottleRate: 10, ThrottleBurst: 20})
	_, stage := s.tmpl.only(t, "AWS::ApiGatewayV2::Stage")
	if got, want := stage.Properties["DefaultRouteSettings"], map[string]any{"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20}; !jsonEqual(got, want) {
		t.Errorf("DefaultRouteSettings: got %v, want %v", got, want)
	}
}

// TestAPIURL checks the ApiUrl output of both kinds: a REST API's paths
// start with its stage, an HTTP API's $default stage adds nothing.
func TestAPIURL(t *testing.T) {
	endpoint := func(apiID string, rest ...any) any {
		parts := append([]any{"https://", ref(apiID), ".execute-api.", ref("AWS::Region"), ".", ref("AWS::URLSuffix"), "/"}, rest...)
		return map[string]any{"Fn::Join": []any{"", parts}}
	}
	t.Run("rest", func(t *testing.T) {
		s := defaultStack()
		apiID, _ := s.tmpl.only(t, "AWS::ApiGateway::RestApi")
		stageID, _ := s.tmpl.only(t, "AWS::ApiGateway::Stage")
		if got, want := s.tmpl.Outputs[stack.OutputAPIURL]["Value"], endpoint(apiID, ref(stageID), "/"); !jsonEqual(got, want) {
			t.Errorf("%s: got %v, want %v", stack.OutputAPIURL, got, want)
		}
	})
	t.Run("http", func(t *testing.T) {
		s := httpStack()
		apiID, _ := s.tmpl.only(t, "AWS::ApiGatewayV2::Api")
		if got, want := s.tmpl.Outputs[stack.OutputAPIURL]["Value"], endpoint(apiID); !jsonEqual(got, want) {
			t.Errorf("%s: got %v, want %v", stack.OutputAPIURL, got, want)
		}
	})
}

func TestHTTPAPICustomDomain(t *testing.T) {
	const (
		domain = "hooks.example.com"
		cert   = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-000000000000"
	)
	s := synth(t, stack.Props{API: stack.APIHTTP, DomainName: domain, CertificateARN: cert})
	domainID, _ := s.tmpl.only(t, "AWS::ApiGatewayV2::DomainName")
	apiID, _ := s.tmpl.only(t, "AWS::ApiGatewayV2::Api")
	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::DomainName"), map[string]any{
			"DomainName": domain,
			"DomainNameConfigurations": []any{map[string]any{
				"CertificateArn": cert, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2",
			}},
		})
	})
	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::ApiMapping"), map[string]any{
			"ApiId": ref(apiID), "DomainName": ref(domainID), "Stage": "$default",
			"ApiMappingKey": assertions.Match_Absent(), // the domain's root is the API's
		})
	})
	want := map[string]any{"Fn::GetAtt": []any{domainID, "RegionalDomainName"}}
	if got := s.tmpl.Outputs[stack.OutputCustomDomainTarget]["Value"]; !jsonEqual(got, want) {
		t.Errorf("%s: got %v, want %v", stack.OutputCustomDomainTarget, got, want)
	}
	check(t, func() { s.ResourceCountIs(jsii.String("AWS::ApiGateway::DomainName"), jsii.Number(0)) })
}

// logGroupID returns the logical id of the log group whose construct id
// is prefix.
func logGroupID(t *testing.T, s synthesized, prefix string) string {
	t.Helper()
	for id := range s.tmpl.ofType("AWS::Logs::LogGroup") {
		if strings.HasPrefix(id, prefix) {
			return id
		}
	}
	t.Fatalf("no log group %s", prefix)
	return ""
}

func TestHTTPAPIServerErrorAlarm(t *testing.T) {
	s := httpStack()
	apiID, _ := s.tmpl.only(t, "AWS::ApiGatewayV2::Api")
	p := alarm(t, s, "Api5xx")
	if p["Namespace"] != "AWS/ApiGateway" || p["MetricName"] != "5xx" || p["Statistic"] != "Sum" {
		t.Errorf("metric: got %v/%v %v, want AWS/ApiGateway/5xx Sum", p["Namespace"], p["MetricName"], p["Statistic"])
	}
	if want := []any{map[string]any{"Name": "ApiId", "Value": ref(apiID)}}; !jsonEqual(p["Dimensions"], want) {
		t.Errorf("dimensions: got %v, want %v", p["Dimensions"], want)
	}
}

// alarm returns the properties of the alarm with construct id id+"Alarm".
func alarm(t *testing.T, s synthesized, id string) map[string]any {
	t.Helper()
	for logicalID, a := range s.tmpl.ofType("AWS::CloudWatch::Alarm") {
		if strings.HasPrefix(logicalID, id+"Alarm") {
			return a.Properties
		}
	}
	t.Fatalf("no alarm %s", id)
	return nil
}
