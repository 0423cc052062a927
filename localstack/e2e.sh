#!/usr/bin/env bash
# Runs hookstep's end-to-end API suite (functions/local, the Svix SDK tests)
# against the stack deployed to LocalStack by `make localstack-deploy`.
set -euo pipefail
cd "$(dirname "$0")/.."

endpoint=${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_DEFAULT_REGION=${AWS_REGION:-us-east-1}
stack=${HOOKSTEP_STACK:-Hookstep}

output() {
  aws --endpoint-url "$endpoint" cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
api_url=$(output ApiUrl)
secret_arn=$(output AdminTokenSecretArn)
token=$(aws --endpoint-url "$endpoint" secretsmanager get-secret-value --secret-id "$secret_arn" --query SecretString --output text)

# The deployed functions run in containers on the compose file's network
# (LAMBDA_DOCKER_NETWORK): the suite's receivers listen on that network's
# gateway, this machine's address there, so those containers reach them
# (never on every interface).
network=${HOOKSTEP_LOCALSTACK_NETWORK:-hookstep-localstack}
gateway=${HOOKSTEP_E2E_RECEIVER_HOST:-$(docker network inspect "$network" --format '{{(index .IPAM.Config 0).Gateway}}')}

HOOKSTEP_E2E_URL="$api_url" HOOKSTEP_E2E_TOKEN="$token" \
HOOKSTEP_E2E_LISTEN="$gateway:0" HOOKSTEP_E2E_RECEIVER_HOST="$gateway" \
  go test -count=1 -v -run 'TestSvixSDKEndToEnd|TestSvixSDKErrors' ./functions/local
