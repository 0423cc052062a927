package lambdafn

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestAWSConfigFromTheEnvironment: the region and the execution role's
// credentials as Lambda sets them, each service's endpoint override by
// its SDK id (as the tests and LocalStack set them), the retry bound;
// what is missing or malformed is an error.
func TestAWSConfigFromTheEnvironment(t *testing.T) {
	env := map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4001", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:4002",
		"AWS_MAX_ATTEMPTS": "1",
	}
	cfg, err := AWSConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKID" || creds.SecretAccessKey != "secret" || creds.SessionToken != "token" {
		t.Errorf("credentials %+v, %v", creds, err)
	}
	if cfg.Region != "eu-west-1" || cfg.RetryMaxAttempts != 1 || cfg.BaseEndpoint != nil {
		t.Errorf("config %+v", cfg)
	}
	if got := aws.ToString(dynamodb.NewFromConfig(cfg).Options().BaseEndpoint); got != "http://127.0.0.1:4001" {
		t.Errorf("DynamoDB endpoint %q", got)
	}
	if got := aws.ToString(secretsmanager.NewFromConfig(cfg).Options().BaseEndpoint); got != "http://127.0.0.1:4002" {
		t.Errorf("Secrets Manager endpoint %q", got)
	}
	if got := awssqs.NewFromConfig(cfg).Options().BaseEndpoint; got != nil {
		t.Errorf("SQS endpoint %q, want AWS's", *got)
	}

	env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:4566" // LocalStack: every service
	if cfg, _ := AWSConfig(func(k string) string { return env[k] }); aws.ToString(awssqs.NewFromConfig(cfg).Options().BaseEndpoint) != "http://127.0.0.1:4566" {
		t.Error("AWS_ENDPOINT_URL does not reach the SQS client")
	}
	for k, v := range map[string]string{"AWS_SECRET_ACCESS_KEY": "", "AWS_REGION": "", "AWS_MAX_ATTEMPTS": "none"} {
		bad := map[string]string{}
		for kk, vv := range env {
			bad[kk] = vv
		}
		bad[k] = v
		if _, err := AWSConfig(func(k string) string { return bad[k] }); err == nil || !strings.Contains(err.Error(), "AWS_") {
			t.Errorf("%s=%q: got %v, want an error", k, v, err)
		}
	}
}
