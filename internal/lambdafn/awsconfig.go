package lambdafn

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// AWSConfig is the AWS SDK configuration of a function, from the
// environment Lambda gives it: AWS_REGION, and the execution role's
// credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN. As the SDK's own loader does, AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> (e.g. AWS_ENDPOINT_URL_DYNAMODB) point clients
// elsewhere (LocalStack, the tests' fakes), and AWS_MAX_ATTEMPTS bounds
// their retries.
//
// It is not config.LoadDefaultConfig, which would resolve the same here:
// that one also links every other credential source (SSO, assume-role,
// web identity, console sign-in), whose STS, SSO and sign-in clients
// weigh in every binary (make bench reports the sizes) and are never used
// in Lambda.
func AWSConfig(getenv func(string) string) (aws.Config, error) {
	cfg := aws.Config{
		Region:        cmp.Or(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")),
		ConfigSources: []any{endpointEnv(getenv)},
	}
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if cfg.Region == "" || id == "" || secret == "" {
		return aws.Config{}, fmt.Errorf("aws config: AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set (Lambda sets them)")
	}
	cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))
	if u := getenv("AWS_ENDPOINT_URL"); u != "" {
		cfg.BaseEndpoint = aws.String(u)
	}
	if v := getenv("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return aws.Config{}, fmt.Errorf("aws config: AWS_MAX_ATTEMPTS=%q: want a whole number from 1", v)
		}
		cfg.RetryMaxAttempts = n
	}
	return cfg, nil
}

// endpointEnv gives each service client its AWS_ENDPOINT_URL_<SERVICE>:
// the SDK's clients ask their configuration's sources for it by the
// service's SDK id, which the variable's name spells in capitals with
// underscores ("Secrets Manager": AWS_ENDPOINT_URL_SECRETS_MANAGER).
type endpointEnv func(string) string

// GetServiceBaseEndpoint implements the SDK's service endpoint source.
func (e endpointEnv) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	v := e("AWS_ENDPOINT_URL_" + strings.ToUpper(strings.ReplaceAll(sdkID, " ", "_")))
	return v, v != "", nil
}
