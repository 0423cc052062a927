package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/infra/stack"
	"github.com/hookstep/hookstep/internal/webhook"
)

// TestMain stops the jsii runtime, which linking awscdk starts and which
// otherwise leaves its temp dir behind.
func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

func TestPropsFromContext(t *testing.T) {
	ctx := map[string]string{
		"retrySchedule":           "0s,1s,2s",
		"httpTimeout":             "5s",
		"disableAfter":            "1h",
		"sweepRate":               "5m",
		"removalPolicy":           "destroy",
		"domainName":              "hooks.example.com",
		"certificateArn":          "arn:aws:acm:eu-west-1:123456789012:certificate/x",
		"alarmTopicArn":           "arn:aws:sns:eu-west-1:123456789012:alarms",
		"apiGatewayLogRoleExists": "true",
		"allowPrivateTargets":     "true",
		"allowHTTP":               "true",
		"apiConcurrency":          "50",
		"deliverConcurrency":      "0",
		"sweeperConcurrency":      "2",
		"dispatchRate":            "40",
		"warmReadUnitsPerSecond":  "20000",
		"warmWriteUnitsPerSecond": "6000",
		"architecture":            "x86_64",
		"dispatch":                "queue",
		"api":                     "http",
		"retentionDays":           "7",
		"queueConcurrency":        "40",
		"queueBatchSize":          "5",
	}
	p, err := propsFromContext(func(k string) string { return ctx[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Schedule.String(), (webhook.Schedule{0, time.Second, 2 * time.Second}).String(); got != want {
		t.Errorf("Schedule: got %s, want %s", got, want)
	}
	if p.HTTPTimeout != 5*time.Second || p.DisableAfter != time.Hour || p.SweepRate != 5*time.Minute {
		t.Errorf("durations: got %s %s %s, want 5s 1h 5m", p.HTTPTimeout, p.DisableAfter, p.SweepRate)
	}
	if !p.AllowPrivateTargets || !p.AllowHTTP {
		t.Errorf("got allowPrivateTargets %v, allowHTTP %v; want both true", p.AllowPrivateTargets, p.AllowHTTP)
	}
	if p.RemovalPolicy != awscdk.RemovalPolicy_DESTROY || !p.APIGatewayLogRoleExists {
		t.Errorf("got removal %s, log role exists %v; want DESTROY, true", p.RemovalPolicy, p.APIGatewayLogRoleExists)
	}
	if p.DomainName != ctx["domainName"] || p.CertificateARN != ctx["certificateArn"] || p.AlarmTopicARN != ctx["alarmTopicArn"] {
		t.Errorf("strings: got %q %q %q", p.DomainName, p.CertificateARN, p.AlarmTopicARN)
	}
	// 0 is a value (no reservation), not "unset".
	for name, got := range map[string]*int{"apiConcurrency": p.APIConcurrency, "deliverConcurrency": p.DeliverConcurrency, "sweeperConcurrency": p.SweeperConcurrency} {
		if want, _ := strconv.Atoi(ctx[name]); got == nil || *got != want {
			t.Errorf("%s: got %v, want %d", name, got, want)
		}
	}
	if p.DispatchRate != 40 {
		t.Errorf("DispatchRate: got %v, want 40", p.DispatchRate)
	}
	if want := (stack.WarmThroughput{ReadUnitsPerSecond: 20000, WriteUnitsPerSecond: 6000}); p.WarmThroughput != want {
		t.Errorf("WarmThroughput: got %+v, want %+v", p.WarmThroughput, want)
	}
	if p.Architecture != stack.X86_64 {
		t.Errorf("Architecture: got %q, want x86_64", p.Architecture)
	}
	if p.Dispatch != stack.DispatchQueue || p.API != stack.APIHTTP {
		t.Errorf("got dispatch %q, api %q; want queue, http", p.Dispatch, p.API)
	}
	if p.RetentionDays != 7 || p.QueueConcurrency != 40 || p.QueueBatchSize != 5 {
		t.Errorf("got retentionDays %d, queueConcurrency %d, queueBatchSize %d; want 7, 40, 5", p.RetentionDays, p.QueueConcurrency, p.QueueBatchSize)
	}
}

func TestPropsFromContextDefaults(t *testing.T) {
	p, err := propsFromContext(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if p.Schedule != nil || p.HTTPTimeout != 0 || p.RemovalPolicy != "" || p.APIConcurrency != nil || p.DeliverConcurrency != nil ||
		p.SweeperConcurrency != nil || p.DispatchRate != 0 || p.WarmThroughput != (stack.WarmThroughput{}) || p.Architecture != "" ||
		p.Dispatch != "" || p.API != "" || p.RetentionDays != 0 || p.QueueConcurrency != 0 || p.QueueBatchSize != 0 {
		t.Errorf("got %+v, want zero values so the stack's defaults apply", p)
	}
}

func TestPropsFromContextReportsEveryBadValue(t *testing.T) {
	ctx := map[string]string{
		"retrySchedule": "soon", "httpTimeout": "15", "removalPolicy": "snapshot", "apiGatewayLogRoleExists": "maybe", "allowHTTP": "sure",
		"apiConcurrency": "lots", "deliverConcurrency": "1.5", "dispatchRate": "40.5",
		"warmReadUnitsPerSecond": "12k", "warmWriteUnitsPerSecond": "4e3", "architecture": "amd64",
		"dispatch": "sqs", "api": "v2", "retentionDays": "30d", "queueConcurrency": "max", "queueBatchSize": "ten",
	}
	_, err := propsFromContext(func(k string) string { return ctx[k] })
	for key := range ctx {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("got %v, want an error naming %s", err, key)
		}
	}
}
