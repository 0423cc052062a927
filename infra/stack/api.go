package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	apigw "github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
)

// addAPI puts a REST API (v1) in front of the api function, proxying
// every path including the root: routing, auth and error shapes are the
// handler's, exactly as in local mode. A REST API rather than an HTTP
// API, because LocalStack Community only has the former, and the same
// stack deploys to both.
func (h *hookstep) addAPI() {
	p := h.props
	accessLogs := awslogs.NewLogGroup(h.stack, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     p.LogRetention,
		RemovalPolicy: p.RemovalPolicy,
	})
	props := &apigw.LambdaRestApiProps{
		Handler:     h.res.api,
		Proxy:       jsii.Bool(true),
		RestApiName: jsii.String(*h.stack.StackName() + "-api"), // the stack's name, not a fixed one
		Description: jsii.String("hookstep: Svix-compatible webhook API and dashboard"),
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
	if p.DomainName != "" {
		props.DomainName = &apigw.DomainNameOptions{
			DomainName:     jsii.String(p.DomainName),
			Certificate:    awscertificatemanager.Certificate_FromCertificateArn(h.stack, jsii.String("Certificate"), jsii.String(p.CertificateARN)),
			EndpointType:   apigw.EndpointType_REGIONAL,
			SecurityPolicy: apigw.SecurityPolicy_TLS_1_2,
		}
	}
	h.res.restAPI = apigw.NewLambdaRestApi(h.stack, jsii.String("RestApi"), props)
}

// addSweep runs the sweeper on a fixed rate.
func (h *hookstep) addSweep() {
	h.res.sweep = awsevents.NewRule(h.stack, jsii.String("Sweep"), &awsevents.RuleProps{
		Description: jsii.String("hookstep sweep: disable week-failing endpoints, re-drive undispatched deliveries"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(h.props.SweepRate.Minutes()))),
		Targets: &[]awsevents.IRuleTarget{
			awseventstargets.NewLambdaFunction(h.res.sweeper, nil),
		},
	})
}
