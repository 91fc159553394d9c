"""Checks template.yaml: cfn-lint over the SAM template (it runs the SAM transform offline),
then the transformed CloudFormation is held to the project's rules. Prints one line per
check and a closing 'N passed, N failed' line; exits non-zero when any check fails."""

import json
import os
import subprocess
import sys
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The transform only needs a region name for ARNs; no AWS call is made.
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} template: {name}{'' if ok else ' -- ' + detail}")


class NoManagedPolicies:
    """Offline: the template uses inline policies only, so no managed policy is looked up."""

    def load(self):
        return {}


CFN_LINT = Path(sys.executable).with_name("cfn-lint")
lint = subprocess.run([str(CFN_LINT), "--regions", "us-east-1", "--", str(TEMPLATE)], capture_output=True, text=True)
check("cfn-lint finds nothing", lint.returncode == 0, lint.stdout + lint.stderr)

sam = yaml_parse(TEMPLATE.read_text())
# As `sam package` does: local code locations become S3 locations before the transform.
for resource in sam["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://artifacts/function.zip"
# Pseudo parameters are given, so the transform needs no AWS session.
cfn = transform(sam, {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}, NoManagedPolicies())
resources = cfn["Resources"]
by_type = lambda t: {k: v for k, v in resources.items() if v["Type"] == t}

functions = by_type("AWS::Lambda::Function")
check("declares functions", len(functions) >= 14, f"{len(functions)} functions")
for name, fn in functions.items():
    props = fn["Properties"]
    check(f"{name} runs on the Architecture parameter (arm64 unless overridden)",
          props.get("Architectures") in (["arm64"], [{"Ref": "Architecture"}]), str(props.get("Architectures")))
    endpoint = props.get("Environment", {}).get("Variables", {}).get("AWS_ENDPOINT_URL")
    check(f"{name} gets AWS_ENDPOINT_URL only when AwsEndpointUrl is given (sam local)",
          endpoint in (None, {"Fn::If": ["HasAwsEndpointUrl", {"Ref": "AwsEndpointUrl"}, {"Ref": "AWS::NoValue"}]}),
          str(endpoint))
    check(f"{name} runs on provided.al2023", props.get("Runtime") == "provided.al2023", str(props.get("Runtime")))
    role = props["Role"]["Fn::GetAtt"][0]
    policies = resources[role]["Properties"].get("Policies", [])
    check(f"{name} has its own inline policy", len(policies) >= 1, "no inline policy")
    managed = resources[role]["Properties"].get("ManagedPolicyArns", [])
    check(f"{name} has only the basic execution and X-Ray write managed policies",
          all("AWSLambdaBasicExecutionRole" in str(arn) or "AWSXrayWriteOnlyAccess" in str(arn) for arn in managed),
          str(managed))
    check(f"{name} writes JSON logs with levels from parameters",
          props.get("LoggingConfig", {}).get("LogFormat") == "JSON"
          and "ApplicationLogLevel" in str(props["LoggingConfig"].get("ApplicationLogLevel")), str(props.get("LoggingConfig")))
    check(f"{name} is traced with X-Ray", props.get("TracingConfig", {}).get("Mode") == "Active", str(props.get("TracingConfig")))
    watched_by = [a for a in by_type("AWS::CloudWatch::Alarm").values()
                  if {"Ref": name} in [d.get("Value") for m in a["Properties"].get("Metrics", [])
                                       for d in m.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])]]
    check(f"{name} has an errors and throttles alarm", len(watched_by) == 1 and all(
        "AlarmTopicArn" in str(a["Properties"].get("AlarmActions")) for a in watched_by), str(len(watched_by)))
    actions = [a for p in policies for s in p["PolicyDocument"]["Statement"] for a in
               (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    check(f"{name} has no wildcard actions", not any("*" in a for a in actions), str(actions))
    logs = [k for k, v in by_type("AWS::Logs::LogGroup").items()
            if name in str(v["Properties"].get("LogGroupName")) and "RetentionInDays" in v["Properties"]]
    check(f"{name} has a log group with retention", len(logs) == 1, str(logs))

roles = [fn["Properties"]["Role"]["Fn::GetAtt"][0] for fn in functions.values()]
check("every function has its own role", len(set(roles)) == len(roles))

tables = by_type("AWS::DynamoDB::Table")
check("one table", len(tables) == 1)
for name, table in tables.items():
    props = table["Properties"]
    check("table has point-in-time recovery",
          props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True)
    check("table has deletion protection", props.get("DeletionProtectionEnabled") is True)
    check("table is on-demand", props.get("BillingMode") == "PAY_PER_REQUEST")
    check("table expires idempotency records (TTL on expiresAt)",
          props.get("TimeToLiveSpecification") == {"AttributeName": "expiresAt", "Enabled": True})
    check("table keys are pk/sk", [k["AttributeName"] for k in props["KeySchema"]] == ["pk", "sk"])
    # shared/src/item.rs (JOBS_INDEX, JOB_PROVIDER_ID) and create_table define the same index.
    indexes = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
    jobs = indexes.get("ScheduledJobs", {})
    check("table has the sparse jobs index on jobProviderId with the attributes the planner reads",
          [k["AttributeName"] for k in jobs.get("KeySchema", [])] == ["jobProviderId"]
          and jobs.get("Projection", {}).get("ProjectionType") == "INCLUDE"
          and {"entity", "organizationId"} <= set(jobs.get("Projection", {}).get("NonKeyAttributes", [])), str(jobs))

keys = by_type("AWS::KMS::Key")
check("one KMS key with rotation", len(keys) == 1 and all(k["Properties"].get("EnableKeyRotation") for k in keys.values()))

apis = by_type("AWS::ApiGatewayV2::Api")
check("one HTTP API", len(apis) == 1)
for api in apis.values():
    body = api["Properties"]["Body"]
    schemes = body.get("components", {}).get("securitySchemes", {})
    authorizer = schemes.get("ApiKeyAuthorizer", {}).get("x-amazon-apigateway-authorizer", {})
    check("the API has a Lambda authorizer with simple responses",
          authorizer.get("type") == "request" and authorizer.get("enableSimpleResponses") is True, str(schemes))
    operations = [(path, method, op) for path, item in body["paths"].items() for method, op in item.items()]
    check("every route is behind the authorizer",
          all(op.get("security") == [{"ApiKeyAuthorizer": []}] for _, _, op in operations),
          str([(p, m) for p, m, op in operations if op.get("security") != [{"ApiKeyAuthorizer": []}]]))
params = cfn.get("Parameters", {})
for p in ["AuthorizerCacheTtlSeconds", "TwilioApiBaseUrl", "TwilioTrunkingBaseUrl", "PlatformSipUri", "CallEngineRoleArn"]:
    check(f"parameter {p}", p in params)
check("PlatformSipUri has no default (deploy must ask)", "Default" not in params.get("PlatformSipUri", {}))
check("Architecture deploys arm64 unless overridden", params.get("Architecture", {}).get("Default") == "arm64",
      str(params.get("Architecture")))
check("AwsEndpointUrl is empty unless given (nothing but the AWS endpoints when deployed)",
      params.get("AwsEndpointUrl", {}).get("Default") == ""
      and cfn.get("Conditions", {}).get("HasAwsEndpointUrl") == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AwsEndpointUrl"}, ""]}]},
      str(params.get("AwsEndpointUrl")))
platform_uri_missing = [name for name, fn in functions.items()
                        if "PLATFORM_SIP_URI" not in fn["Properties"].get("Environment", {}).get("Variables", {})
                        and any(b in name for b in ["Create", "Verify", "Repair", "Reverify", "Rotate"])]
check("functions that create, verify or repair trunks get PLATFORM_SIP_URI", not platform_uri_missing,
      str(platform_uri_missing))
permissions = by_type("AWS::Lambda::Permission")
call_engine = [p for p in permissions.values()
               if p["Properties"].get("Principal") == {"Ref": "CallEngineRoleArn"}]
check("the call engine role may invoke get-sip-credential, only when given",
      len(call_engine) == 1 and call_engine[0].get("Condition") == "HasCallEngineRole"
      and "GetSipCredential" in str(call_engine[0]["Properties"]["FunctionName"]), str(call_engine))
sip_reader = [fn for name, fn in functions.items() if name.startswith("GetSipCredential")]
if sip_reader:
    role = sip_reader[0]["Properties"]["Role"]["Fn::GetAtt"][0]
    actions = sorted(a for p in resources[role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]
                     for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
    check("get-sip-credential may only GetItem and Decrypt", actions == ["dynamodb:GetItem", "kms:Decrypt"], str(actions))
check("get-sip-credential exists", len(sip_reader) == 1)
check("output ApiUrl", "ApiUrl" in cfn.get("Outputs", {}))
stages = by_type("AWS::ApiGatewayV2::Stage")
stage = next(iter(stages.values()), {}).get("Properties", {})
throttling = stage.get("DefaultRouteSettings", {})
check("the API stage throttles every route by parameters",
      throttling.get("ThrottlingRateLimit") == {"Ref": "ApiThrottlingRateLimit"}
      and throttling.get("ThrottlingBurstLimit") == {"Ref": "ApiThrottlingBurstLimit"}, str(throttling))
access = stage.get("AccessLogSettings", {})
try:
    access_format = json.loads(access.get("Format", ""))
except ValueError:
    access_format = {}
check("the API writes JSON access logs naming the request, the organization, the API key id and the status",
      {"requestId", "organizationId", "apiKeyId", "status"} <= set(access_format)
      and access.get("DestinationArn") == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}, str(access))
check("access logs keep the retention parameter",
      resources.get("ApiAccessLogs", {}).get("Properties", {}).get("RetentionInDays") == {"Ref": "LogRetentionInDays"})
check("get-sip-credential has reserved concurrency (a parameter)",
      any(fn["Properties"].get("ReservedConcurrentExecutions") == {"Ref": "SipCredentialReservedConcurrency"}
          for name, fn in functions.items() if name.startswith("GetSipCredential")))
queue_policies = by_type("AWS::SQS::QueuePolicy")
def senders(queue):
    """The roles a queue's policy lets send (everyone else is denied sqs:SendMessage)."""
    for policy in queue_policies.values():
        if policy["Properties"]["Queues"] == [{"Ref": queue}]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "sqs:SendMessage"):
                    allowed = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
                    return sorted(a["Fn::GetAtt"][0] for a in allowed)
    return None
role_of = lambda prefix: next(fn["Properties"]["Role"]["Fn::GetAtt"][0] for n, fn in functions.items() if n.startswith(prefix))
check("only delete-provider and continue-deletions may send to the deletion queue",
      senders("DeletionQueue") == sorted([role_of("DeleteProvider"), role_of("ContinueDeletions")]), str(senders("DeletionQueue")))
check("only plan-jobs may send to the jobs queue", senders("JobsQueue") == [role_of("PlanJobs")], str(senders("JobsQueue")))
trails = by_type("AWS::CloudTrail::Trail")
trail = next(iter(trails.values()), {})
selectors = trail.get("Properties", {}).get("EventSelectors", [])
check("an optional trail records get-sip-credential's invocations (Lambda data events)",
      trail.get("Condition") == "HasSipCredentialTrail"
      and any(r.get("Type") == "AWS::Lambda::Function"
              and r.get("Values") == [{"Fn::GetAtt": ["GetSipCredentialFunction", "Arn"]}]
              for sel in selectors for r in sel.get("DataResources", []))
      and params.get("SipCredentialTrail", {}).get("Default") == "false", str(trail))
check("the authorizer's cache is at most 300 s", params.get("AuthorizerCacheTtlSeconds", {}).get("MaxValue") == 300,
      str(params.get("AuthorizerCacheTtlSeconds")))
queues = by_type("AWS::SQS::Queue")
work_queues = {k: v for k, v in queues.items() if "RedrivePolicy" in v["Properties"]}
check("there are work queues", len(work_queues) >= 1, str(list(queues)))
alarms = by_type("AWS::CloudWatch::Alarm")
for name, queue in work_queues.items():
    dlq = queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    check(f"{name} has a dead-letter queue", dlq in queues, dlq)
    watched = [a for a in alarms.values()
               if any(d.get("Value") == {"Fn::GetAtt": [dlq, "QueueName"]} for d in a["Properties"].get("Dimensions", []))]
    check(f"{name}'s dead-letter queue has an alarm", len(watched) == 1, str(watched))
    check(f"{name}'s alarm notifies the alarm topic", all("AlarmTopicArn" in str(a["Properties"].get("AlarmActions")) for a in watched))
for name, alarm in alarms.items():
    check(f"alarm {name} notifies the alarm topic when one is given", "AlarmTopicArn" in str(alarm["Properties"].get("AlarmActions")))
alarmed_metrics = str([a["Properties"] for a in alarms.values()])
for metric in ["OrphansRecorded", "5xx", "CredentialsRejected"]:
    check(f"an alarm watches {metric}", metric in alarmed_metrics)
check("a dashboard shows the service", len(by_type("AWS::CloudWatch::Dashboard")) == 1)
mappings = by_type("AWS::Lambda::EventSourceMapping")
for name, mapping in mappings.items():
    props = mapping["Properties"]
    check(f"{name} reports partial batch failures", props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"])
    check(f"{name} bounds its concurrency", "MaximumConcurrency" in props.get("ScalingConfig", {}))
    consumer = props["FunctionName"]["Ref"]
    queue = props["EventSourceArn"]["Fn::GetAtt"][0]
    timeout = functions[consumer]["Properties"].get("Timeout", 3)
    check(f"{name}: the queue's visibility timeout covers the consumer's timeout",
          queues[queue]["Properties"].get("VisibilityTimeout", 30) >= timeout)
schedules = by_type("AWS::Scheduler::Schedule")
inputs = [s["Properties"].get("Target", {}).get("Input") for s in schedules.values()]
check("the re-verification job runs hourly",
      any(s["Properties"].get("ScheduleExpression") == "rate(1 hour)" and "reverify" in str(s["Properties"]["Target"].get("Input"))
          for s in schedules.values()), str(inputs))
check("the orphan sweep has its own schedule", any("sweep-orphans" in str(i) for i in inputs), str(inputs))

passed, failed = results.count(True), results.count(False)
print(f"template: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
