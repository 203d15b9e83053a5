"""Create examples/codepipeline/prerequisites.yml as a stack on moto (a VPC
and two subnets first) and print the stack's outputs as JSON.

    python cfn_stack.py ENDPOINT TEMPLATE SERVICE_NAME
"""
import json
import sys

import boto3

endpoint, template, service = sys.argv[1], sys.argv[2], sys.argv[3]
kw = dict(
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
)
ec2 = boto3.client("ec2", **kw)
vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
subnets = [
    ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{az}")[
        "Subnet"
    ]["SubnetId"]
    for i, az in ((1, "a"), (2, "b"))
]
cfn = boto3.client("cloudformation", **kw)
cfn.create_stack(
    StackName=f"{service}-teal",
    TemplateBody=open(template).read(),
    Parameters=[
        {"ParameterKey": "VpcId", "ParameterValue": vpc},
        {"ParameterKey": "Subnets", "ParameterValue": ",".join(subnets)},
        {"ParameterKey": "ServiceName", "ParameterValue": service},
        # The tests' moto already has the table (tests/support/aws.rs).
        {"ParameterKey": "CreateLedgerTable", "ParameterValue": "false"},
    ],
)
stack = cfn.describe_stacks(StackName=f"{service}-teal")["Stacks"][0]
if stack["StackStatus"] != "CREATE_COMPLETE":
    sys.exit(f"stack {stack['StackStatus']}: {stack.get('StackStatusReason')}")
print(json.dumps({o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}))
