"""Checks template.yaml: cfn-lint over the SAM template (it runs the SAM transform offline),
then the transformed CloudFormation is held to the project's rules. Prints one line per
check and a closing 'N passed, N failed' line; exits non-zero when any check fails."""

import fnmatch
import json
import os
import re
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
    # shared/src/storage/item.rs (JOBS_INDEX, JOB_PROVIDER_ID) and create_table define the same index.
    indexes = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
    jobs = indexes.get("ScheduledJobs", {})
    check("table has the sparse jobs index on jobProviderId with the attributes the planner reads",
          [k["AttributeName"] for k in jobs.get("KeySchema", [])] == ["jobProviderId"]
          and jobs.get("Projection", {}).get("ProjectionType") == "INCLUDE"
          and {"entity", "organizationId"} <= set(jobs.get("Projection", {}).get("NonKeyAttributes", [])), str(jobs))

as_list = lambda v: v if isinstance(v, list) else [v]
keys = by_type("AWS::KMS::Key")
check("one KMS key with rotation", len(keys) == 1 and all(k["Properties"].get("EnableKeyRotation") for k in keys.values()))


def references(node):
    """The names a Ref, Fn::GetAtt or Fn::Sub in node points at."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!][^}]*)\}", text)} - set(variables)
                found |= references(variables)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


# CloudFormation refuses a template whose resources depend on each other in a circle (as a key
# policy naming a role and that role's policy naming the key would); cfn-lint does not see one
# that only appears after the SAM transform.
depends = {name: {d for d in references(r.get("Properties", {})) | set(as_list(r.get("DependsOn", []))) if d in resources}
           for name, r in resources.items()}
cycle, state = [], {}


def visit(name, path):
    """Depth first from name; on coming back to a resource still open, records the circle."""
    state[name] = "open"
    for other in sorted(depends[name]):
        if state.get(other) == "open":
            cycle.extend(path[path.index(other):] + [name, other] if other in path else [name, other])
            return True
        if other not in state and visit(other, path + [name]):
            return True
    state[name] = "done"
    return False
for name in sorted(resources):
    if name not in state and visit(name, []):
        break
check("no dependency cycle among the transformed resources", not cycle, " -> ".join(cycle))

# The key's use is granted in its policy alone, never in a role's: each function that needs the
# key (as its role's statements said before the move) with exactly these actions.
KEY_USE = {
    "CreateTwilioProviderFunction": {"kms:GenerateDataKey"},
    "UpdateTwilioProviderFunction": {"kms:Decrypt"},
    "RotateTwilioAuthTokenFunction": {"kms:GenerateDataKey"},
    "ReplaceTwilioCredentialsFunction": {"kms:GenerateDataKey"},
    "DeleteProviderFunction": {"kms:Decrypt"},
    "ListAvailableNumbersFunction": {"kms:Decrypt"},
    "ImportNumbersFunction": {"kms:Decrypt", "kms:GenerateDataKey"},
    "RemovePhoneNumberFunction": {"kms:Decrypt"},
    "VerifyProviderFunction": {"kms:Decrypt"},
    "RepairProviderFunction": {"kms:Decrypt", "kms:GenerateDataKey"},
    "RotateSipCredentialFunction": {"kms:Decrypt", "kms:GenerateDataKey"},
    "FinishSipCredentialRotationFunction": {"kms:Decrypt"},
    "GetSipCredentialFunction": {"kms:Decrypt"},
    "ContinueDeletionsFunction": {"kms:Decrypt"},
    "RunJobsFunction": {"kms:Decrypt"},
}
# What uses the key, or hands its use to others (a grant needs no change to the key policy).
KEY_USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                   "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair",
                   "kms:GenerateDataKeyPairWithoutPlaintext", "kms:GenerateMac", "kms:VerifyMac", "kms:Sign",
                   "kms:Verify", "kms:DeriveSharedSecret", "kms:CreateGrant"]
matches = lambda pattern, action: fnmatch.fnmatchcase(action.lower(), pattern.lower())
role_policy_kms = sorted({f"{name}: {a}" for name, role in by_type("AWS::IAM::Role").items()
                          for p in role["Properties"].get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])
                          for a in as_list(s.get("Action", [])) + as_list(s.get("NotAction", []))
                          if a == "*" or a.lower().startswith("kms:")})
role_policy_kms += sorted(f"{name}: {type_}" for type_ in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"]
                          for name, policy in by_type(type_).items() if "kms:" in json.dumps(policy).lower())
check("no role's policy names a kms action (the key policy alone grants the key)", not role_policy_kms,
      str(role_policy_kms))
# shared/src/crypto.rs: the encryption context every GenerateDataKey and Decrypt passes.
context_keys = sorted(set(re.findall(r'\.encryption_context\("([^"]+)"', (ROOT / "shared/src/crypto.rs").read_text())))
check("the service's encryption context is organizationId and providerId (shared/src/crypto.rs)",
      context_keys == ["organizationId", "providerId"], str(context_keys))
function_of_role = {fn["Properties"]["Role"]["Fn::GetAtt"][0]: name for name, fn in functions.items()}
key_statements = [s for k in keys.values() for s in as_list(k["Properties"].get("KeyPolicy", {}).get("Statement", []))]
admin = [s for s in key_statements if s.get("Sid") == "KeyAdministration"]
uses = [s for s in key_statements if s.get("Sid") != "KeyAdministration"]
granted = {}
for s in uses:
    sid = s.get("Sid", "?")
    role = (s.get("Principal", {}).get("AWS", {}) if isinstance(s.get("Principal"), dict) else {})
    role = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) and list(role) == ["Fn::GetAtt"] else None
    check(f"key policy {sid}: allows one function's role (!GetAtt ...Role.Arn), on this key",
          set(s) == {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"} and s["Effect"] == "Allow"
          and role in function_of_role and s["Principal"]["AWS"]["Fn::GetAtt"][1] == "Arn" and s["Resource"] == "*", str(s))
    condition = s.get("Condition", {})
    check(f"key policy {sid}: only with the service's encryption context keys, never an empty one",
          set(condition) == {"ForAllValues:StringEquals", "Null"}
          and set(condition["ForAllValues:StringEquals"]) == {"kms:EncryptionContextKeys"}
          and sorted(as_list(condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"])) == context_keys
          and condition["Null"] in ({"kms:EncryptionContextKeys": "false"}, {"kms:EncryptionContextKeys": False}),
          str(condition))
    check(f"key policy {sid}: names its actions (no wildcards), all of them uses of the key",
          all(a in KEY_USE_ACTIONS for a in as_list(s.get("Action", []))), str(s.get("Action")))
    if role in function_of_role:
        granted.setdefault(function_of_role[role], set()).update(as_list(s.get("Action", [])))
for name in functions:
    expected = KEY_USE.get(name, set())
    check(f"{name} may use the key for {sorted(expected) or 'nothing'}", granted.get(name, set()) == expected,
          str(sorted(granted.get(name, set()))))
check("every function the key policy expects exists", set(KEY_USE) <= set(functions), str(set(KEY_USE) - set(functions)))
check("one key administration statement, to KeyAdministratorArn or else the account root",
      len(admin) == 1 and admin[0].get("Effect") == "Allow" and admin[0].get("Resource") == "*"
      and admin[0].get("Principal") == {"AWS": {"Fn::If": [
          "HasKeyAdministrator", {"Ref": "KeyAdministratorArn"},
          {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}]}}
      and cfn.get("Parameters", {}).get("KeyAdministratorArn", {}).get("Default") == ""
      and cfn.get("Conditions", {}).get("HasKeyAdministrator")
      == {"Fn::Not": [{"Fn::Equals": [{"Ref": "KeyAdministratorArn"}, ""]}]}, str(admin))
admin_actions = [a for s in admin for a in as_list(s.get("Action", []))]
check("the key administrator cannot use the key nor grant its use",
      len(admin) == 1 and "NotAction" not in admin[0]
      and not any(matches(p, a) for p in admin_actions for a in KEY_USE_ACTIONS),
      str([f"{p} allows {a}" for p in admin_actions for a in KEY_USE_ACTIONS if matches(p, a)]))
check("the key administrator keeps PutKeyPolicy, rotation and deletion (the key stays manageable)",
      all(any(matches(p, a) for p in admin_actions) for a in
          ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey", "kms:EnableKeyRotation", "kms:ScheduleKeyDeletion",
           "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:TagResource"]), str(admin_actions))

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
retention = params.get("EventRetentionDays", {})
check("audit events are kept 400 days unless the deployment says otherwise (1 to 3650)",
      retention.get("Default") == 400 and retention.get("MinValue") == 1 and retention.get("MaxValue") == 3650,
      str(retention))
retention_missing = [name for name, fn in functions.items()
                     if fn["Properties"].get("Environment", {}).get("Variables", {}).get("EVENT_RETENTION_DAYS")
                     != {"Ref": "EventRetentionDays"}]
check("every function knows how long events are kept", not retention_missing, str(retention_missing))
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
    actions = sorted(actions + list(granted.get("GetSipCredentialFunction", set())))
    # PutItem: the audit event of each read, written before the password is returned.
    check("get-sip-credential may only GetItem, PutItem and Decrypt",
          actions == ["dynamodb:GetItem", "dynamodb:PutItem", "kms:Decrypt"], str(actions))
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
# run-jobs: the sweeper continues a delete whose step died midway.
check("only delete-provider, continue-deletions and run-jobs may send to the deletion queue",
      senders("DeletionQueue") == sorted([role_of("DeleteProvider"), role_of("ContinueDeletions"), role_of("RunJobs")]),
      str(senders("DeletionQueue")))
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
