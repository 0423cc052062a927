package bench

// Prices are AWS list prices in USD, us-east-1, first pricing tier.
type Prices struct {
	AsOf   string `json:"asOf"`
	Region string `json:"region"`
	// Lambda on arm64 (Graviton): per GB-second and per request.
	LambdaGBSecond float64 `json:"lambdaArm64PerGBSecond"`
	LambdaRequest  float64 `json:"lambdaPerRequest"`
	// Step Functions Standard: per state transition.
	StateTransition float64 `json:"stepFunctionsPerStateTransition"`
	// DynamoDB on demand, Standard table class: per write and read
	// request unit, and storage per GB-month.
	DynamoWRU            float64 `json:"dynamodbPerWriteRequestUnit"`
	DynamoRRU            float64 `json:"dynamodbPerReadRequestUnit"`
	DynamoStorageGBMonth float64 `json:"dynamodbStoragePerGBMonth"`
	// API Gateway: per request of a REST API (first 333 million a month)
	// and of an HTTP API (first 300 million, metered per 512 KB).
	APIGatewayRequest     float64 `json:"apiGatewayRestPerRequest"`
	APIGatewayHTTPRequest float64 `json:"apiGatewayHttpPerRequest"`
	// SQS standard queue: per request (first 100 billion a month; each
	// 64 KB chunk of a request's payload is a request).
	SQSRequest float64 `json:"sqsStandardPerRequest"`
	// CloudWatch Logs: ingestion per GB (standard class).
	LogsIngestGB float64 `json:"cloudwatchLogsIngestPerGB"`
	// Checks say, for each price, where it was checked and when.
	Checks []PriceCheck `json:"checks"`
}

// PriceCheck is where one price was confirmed, and when; Checked is
// "not re-checked" for a price no source confirmed.
type PriceCheck struct {
	Price   string `json:"price"`
	Value   string `json:"value"`
	Checked string `json:"checked"`
	Source  string `json:"source"`
}

// pricesCheckedOn is the day the prices below were looked up.
const pricesCheckedOn = "2026-12-03"

// PublishedPrices are the prices the cost model uses: AWS's published
// us-east-1 list prices, DynamoDB on demand after its November 2024 cut.
// Checks names the page each was confirmed on. AWS's own pricing pages
// render most of their rate tables client-side, so where the stored copy
// of the AWS page shows no number, the number was confirmed on dated
// secondary pages that quote it, and the check says so. Look again before
// quoting: https://aws.amazon.com/pricing/.
var PublishedPrices = Prices{
	AsOf:                  pricesCheckedOn + " (see checks: each price's source)",
	Region:                "us-east-1",
	LambdaGBSecond:        0.0000133334,
	LambdaRequest:         0.20 / 1e6,
	StateTransition:       0.025 / 1000,
	DynamoWRU:             0.625 / 1e6,
	DynamoRRU:             0.125 / 1e6,
	DynamoStorageGBMonth:  0.25,
	APIGatewayRequest:     3.50 / 1e6,
	APIGatewayHTTPRequest: 1.00 / 1e6,
	SQSRequest:            0.40 / 1e6,
	LogsIngestGB:          0.50,
	Checks: []PriceCheck{
		{"Lambda arm64 duration", "$0.0000133334 per GB-s (first 7.5 billion GB-s a month)", pricesCheckedOn,
			"secondary: cloudchipr.com/blog/aws-lambda-pricing (us-east-1 tiers), git.mcrn.ar lambda_local_runner docs/lambda-13-cost.md (2026-05-11), artillery's prices.js (arm64 1333340e-11); aws.amazon.com/lambda/pricing renders its rates client-side"},
		{"Lambda requests", "$0.20 per million", pricesCheckedOn,
			"aws.amazon.com/lambda/pricing as transcribed 2026-09-20 by api-evangelist/aws-lambda plans (\"$0.20 per million requests\"); the same secondary pages"},
		{"Step Functions Standard", "$0.025 per 1,000 state transitions", pricesCheckedOn,
			"aws.amazon.com/step-functions/pricing (state transitions pricing table: US East (N. Virginia) $0.0250 per 1,000)"},
		{"DynamoDB on-demand writes", "$0.625 per million WRU (after the 1 Nov 2024 50% cut)", pricesCheckedOn,
			"secondary: airbyte.com/data-engineering-resources/dynamodb-pricing (2025-07-21, US East, after the Nov 2024 reduction), jusdb.com DynamoDB cost guide (2025-08-19: the 1 Nov 2024 cut); aws.amazon.com/dynamodb/pricing/on-demand renders its rates client-side"},
		{"DynamoDB on-demand reads", "$0.125 per million RRU", pricesCheckedOn,
			"secondary: the same airbyte.com page (US East)"},
		{"DynamoDB storage", "$0.25 per GB-month (first 25 GB free)", pricesCheckedOn,
			"aws.amazon.com/dynamodb/pricing (\"prices start from $0.25 per GB-month\")"},
		{"API Gateway REST", "$3.50 per million (first 333 million)", pricesCheckedOn,
			"secondary: amnic.com/blogs/aws-api-gateway-pricing (citing Amazon API Gateway pricing), awsforengineers.com (2025-05-19), go-cloud.io (2026); aws.amazon.com/api-gateway/pricing renders its rates client-side"},
		{"API Gateway HTTP", "$1.00 per million (first 300 million; 512 KB increments)", pricesCheckedOn,
			"the same secondary pages; the 512 KB metering from docs.aws.amazon.com whitepaper best-practices-api-gateway-private-apis-integration/cost-optimization"},
		{"SQS standard", "$0.40 per million requests (first 1 million a month free; each 64 KB chunk a request)", pricesCheckedOn,
			"secondary: cloudburn.io/blog/amazon-sqs-pricing (us-east-1, March 2026), factualminds.com SQS pricing (2026-06-13)"},
		{"CloudWatch Logs ingestion", "$0.50 per GB (standard class)", pricesCheckedOn,
			"secondary: c3x.dev/blog/cloudwatch-logs-cost-optimization (us-east-1, June 2026)"},
	},
}
