package stack

import (
	"encoding/json"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	apigw "github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	apigw2 "github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	apigw2integrations "github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	cw "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// addAPI puts the API Gateway API of the props' kind in front of the api
// function, proxying every path: routing, auth and error shapes are the
// handler's, exactly as in local mode.
func (h *hookstep) addAPI() {
	accessLogs := awslogs.NewLogGroup(h.stack, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     h.props.LogRetention,
		RemovalPolicy: h.props.RemovalPolicy,
	})
	var certificate awscertificatemanager.ICertificate
	if h.props.DomainName != "" {
		certificate = awscertificatemanager.Certificate_FromCertificateArn(h.stack, jsii.String("Certificate"), jsii.String(h.props.CertificateARN))
	}
	if h.props.API == APIHTTP {
		h.addHTTPAPI(accessLogs, certificate)
		return
	}
	h.addRestAPI(accessLogs, certificate)
}

// apiName is the API's name: the stack's, not a fixed one.
func (h *hookstep) apiName() *string {
	return jsii.String(*h.stack.StackName() + "-api")
}

// apiDescription describes the API of either kind.
const apiDescription = "hookstep: Svix-compatible webhook API and dashboard"

// addRestAPI puts a REST API (v1) in front of the api function, the
// root and {proxy+} both proxied, with the stage's name as the first
// part of every path. It is the default because LocalStack Community
// only has REST APIs, and the same stack deploys to both.
func (h *hookstep) addRestAPI(accessLogs awslogs.LogGroup, certificate awscertificatemanager.ICertificate) {
	p := h.props
	props := &apigw.LambdaRestApiProps{
		Handler:     h.res.api,
		Proxy:       jsii.Bool(true),
		RestApiName: h.apiName(),
		Description: jsii.String(apiDescription),
		// Regional: a custom domain then takes a certificate from the
		// stack's own region, and no CloudFront distribution is made.
		EndpointTypes: &[]apigw.EndpointType{apigw.EndpointType_REGIONAL},
		// Access logs need the account's API Gateway CloudWatch role.
		CloudWatchRole: jsii.Bool(!p.APIGatewayLogRoleExists),
		DeployOptions: &apigw.StageOptions{
			ThrottlingRateLimit:  jsii.Number(p.ThrottleRate),
			ThrottlingBurstLimit: jsii.Number(p.ThrottleBurst),
			AccessLogDestination: apigw.NewLogGroupLogDestination(accessLogs),
			AccessLogFormat: apigw.AccessLogFormat_JsonWithStandardFields(&apigw.JsonWithStandardFieldProps{
				Caller: jsii.Bool(false), HttpMethod: jsii.Bool(true), Ip: jsii.Bool(true), Protocol: jsii.Bool(true),
				RequestTime: jsii.Bool(true), ResourcePath: jsii.Bool(true), ResponseLength: jsii.Bool(true),
				Status: jsii.Bool(true), User: jsii.Bool(false),
			}),
			MetricsEnabled: jsii.Bool(true),
			// Execution logs and data tracing would copy request bodies
			// and Authorization headers into CloudWatch; access logs
			// and the function's own log suffice.
			LoggingLevel:     apigw.MethodLoggingLevel_OFF,
			DataTraceEnabled: jsii.Bool(false),
		},
	}
	if certificate != nil {
		props.DomainName = &apigw.DomainNameOptions{
			DomainName:     jsii.String(p.DomainName),
			Certificate:    certificate,
			EndpointType:   apigw.EndpointType_REGIONAL,
			SecurityPolicy: apigw.SecurityPolicy_TLS_1_2,
		}
	}
	api := apigw.NewLambdaRestApi(h.stack, jsii.String("RestApi"), props)
	h.res.apiURL = api.Url()
	h.res.apiServerErrors = api.MetricServerError(&cw.MetricOptions{Period: seconds(alarmPeriod), Statistic: jsii.String("Sum")})
	if d := api.DomainName(); d != nil {
		h.res.apiDomainTarget = d.DomainNameAliasDomainName()
	}
}

// httpAccessLogFormat is the HTTP API's access log line: the REST API's
// fields, in the variables HTTP APIs have (a route key rather than a
// resource path), and the integration's error, which says why a
// request ended in 5xx without the function's answer.
var httpAccessLogFormat = map[string]string{
	"requestId":        "$context.requestId",
	"ip":               "$context.identity.sourceIp",
	"requestTime":      "$context.requestTime",
	"httpMethod":       "$context.httpMethod",
	"routeKey":         "$context.routeKey",
	"path":             "$context.path",
	"status":           "$context.status",
	"protocol":         "$context.protocol",
	"responseLength":   "$context.responseLength",
	"integrationError": "$context.integrationErrorMessage",
}

// addHTTPAPI puts an HTTP API (v2) in front of the api function: one
// $default route proxying every method and path to the function with
// payload format 2.0, and a $default stage, so paths have no stage
// prefix. It costs $1.00 per million requests where a REST API costs
// $3.50. Its access logs need no account-wide role.
func (h *hookstep) addHTTPAPI(accessLogs awslogs.LogGroup, certificate awscertificatemanager.ICertificate) {
	p := h.props
	api := apigw2.NewHttpApi(h.stack, jsii.String("HttpApi"), &apigw2.HttpApiProps{
		ApiName:     h.apiName(),
		Description: jsii.String(apiDescription),
		DefaultIntegration: apigw2integrations.NewHttpLambdaIntegration(jsii.String("Api"), h.res.api, &apigw2integrations.HttpLambdaIntegrationProps{
			PayloadFormatVersion: apigw2.PayloadFormatVersion_VERSION_2_0(),
		}),
		// The stage below, which can take throttling and access logs.
		CreateDefaultStage: jsii.Bool(false),
	})
	format, err := json.Marshal(httpAccessLogFormat)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	stage := &apigw2.HttpStageOptions{
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &apigw2.ThrottleSettings{
			RateLimit:  jsii.Number(p.ThrottleRate),
			BurstLimit: jsii.Number(p.ThrottleBurst),
		},
		AccessLogSettings: &accessLogSettings{
			destination: apigw2.NewLogGroupLogDestination(accessLogs),
			format:      apigw.AccessLogFormat_Custom(jsii.String(string(format))),
		},
	}
	var domain apigw2.DomainName
	if certificate != nil {
		domain = apigw2.NewDomainName(h.stack, jsii.String("DomainName"), &apigw2.DomainNameProps{
			DomainName:     jsii.String(p.DomainName),
			Certificate:    certificate,
			EndpointType:   apigw2.EndpointType_REGIONAL,
			SecurityPolicy: apigw2.SecurityPolicy_TLS_1_2,
		})
		stage.DomainMapping = &apigw2.DomainMappingOptions{DomainName: domain}
	}
	st := api.AddStage(jsii.String("DefaultStage"), stage)
	h.res.apiURL = st.Url()
	h.res.apiServerErrors = api.MetricServerError(&cw.MetricOptions{Period: seconds(alarmPeriod), Statistic: jsii.String("Sum")})
	if domain != nil {
		h.res.apiDomainTarget = domain.RegionalDomainName()
	}
}

// accessLogSettings are an HTTP API stage's access log settings.
type accessLogSettings struct {
	destination apigw2.IAccessLogDestination
	format      apigw.AccessLogFormat
}

func (s *accessLogSettings) Destination() apigw2.IAccessLogDestination { return s.destination }
func (s *accessLogSettings) Format() apigw.AccessLogFormat             { return s.format }

// addSweep runs the sweeper on a fixed rate, and on every execution of
// the delivery state machine that ends without succeeding.
//
// An execution fails beyond its error handling (hookstep.Stranded,
// hookstep.UnknownOutcome), is stopped by an operator, or times out: its
// run may be unfinished, and a run the api dispatched before it stored
// the message has no delivery item the sweep would find until its first
// attempt (internal/dynamo, deferred deliveries). Step Functions sends
// the status change to EventBridge, whose rule invokes the sweeper with
// the execution's input, the run; the sweeper re-drives it if it is still
// unfinished (lambdafn.ExecutionDetail). EventBridge retries an
// invocation that fails for up to 24 hours, then keeps the event in
// EndedDeadLetters, which alarms.
func (h *hookstep) addSweep() {
	h.res.sweep = awsevents.NewRule(h.stack, jsii.String("Sweep"), &awsevents.RuleProps{
		Description: jsii.String("hookstep sweep: disable week-failing endpoints, re-drive undispatched deliveries"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(h.props.SweepRate.Minutes()))),
		Targets: &[]awsevents.IRuleTarget{
			awseventstargets.NewLambdaFunction(h.res.sweeper, nil),
		},
	})
	h.res.endedDeadLetters = awssqs.NewQueue(h.stack, jsii.String("EndedDeadLetters"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: seconds(queueRetention),
	})
	awsevents.NewRule(h.stack, jsii.String("ExecutionEnded"), &awsevents.RuleProps{
		Description: jsii.String("hookstep: give the sweeper the run of a delivery execution that failed, was aborted or timed out"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.states"),
			DetailType: jsii.Strings("Step Functions Execution Status Change"),
			Detail: &map[string]any{
				"stateMachineArn": []any{h.res.stateMachine.StateMachineArn()},
				"status":          []any{"FAILED", "ABORTED", "TIMED_OUT"},
			},
		},
		Targets: &[]awsevents.IRuleTarget{
			awseventstargets.NewLambdaFunction(h.res.sweeper, &awseventstargets.LambdaFunctionProps{
				DeadLetterQueue: h.res.endedDeadLetters,
				MaxEventAge:     awscdk.Duration_Hours(jsii.Number(24)),
				RetryAttempts:   jsii.Number(185),
			}),
		},
	})
}
