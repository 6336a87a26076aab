"""A real S3 for the tests: moto's server on 127.0.0.1 (a port the OS
chooses), with IAM authentication on, so that a wrong key is refused as
AWS refuses it (InvalidAccessKeyId, SignatureDoesNotMatch).

Prints one line, `READY <port> <access key id> <secret>`, for a key allowed
everything on S3 and a bucket named `cameras`. Then answers commands on
standard input, each answered by one line, read back with boto3 (a real
client); words are separated by tabs (keys may have spaces):

    get BUCKET KEY   FOUND SIZE SHA256 CONTENT-TYPE, or ERROR CODE
    keys BUCKET      KEYS KEY...      (the objects)
    uploads BUCKET   UPLOADS KEY...   (the multipart uploads in progress)

and stops at the end of standard input.
"""

import hashlib
import json
import sys

import boto3
import botocore.config
import moto.settings
from moto.server import ThreadedMotoServer


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    config = botocore.config.Config(
        s3={"addressing_style": "path"}, retries={"max_attempts": 1}
    )

    # Set up without authentication (moto checks none yet), then turn it on.
    setup = dict(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="relay")
    iam.put_user_policy(
        UserName="relay",
        PolicyName="s3",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="relay")["AccessKey"]
    boto3.client("s3", config=config, **setup).create_bucket(Bucket="cameras")
    moto.settings.INITIAL_NO_AUTH_ACTION_COUNT = 0

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=config,
    )
    print(f"READY {port} {key['AccessKeyId']} {key['SecretAccessKey']}", flush=True)

    for line in sys.stdin:
        words = line.rstrip("\n").split("\t")
        try:
            if words[0] == "get":
                answer = get(s3, words[1], words[2])
            elif words[0] == "keys":
                objects = s3.list_objects_v2(Bucket=words[1]).get("Contents", [])
                answer = ["KEYS", *sorted(o["Key"] for o in objects)]
            elif words[0] == "uploads":
                uploads = s3.list_multipart_uploads(Bucket=words[1]).get("Uploads", [])
                answer = ["UPLOADS", *sorted(u["Key"] for u in uploads)]
            else:
                answer = ["ERROR", f"unknown command {words[0]}"]
        except s3.exceptions.ClientError as e:
            answer = ["ERROR", e.response.get("Error", {}).get("Code", str(e))]
        print("\t".join(answer), flush=True)
    server.stop()


def get(s3, bucket: str, key: str) -> list:
    got = s3.get_object(Bucket=bucket, Key=key)
    digest = hashlib.sha256()
    size = 0
    for chunk in got["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    return ["FOUND", str(size), digest.hexdigest(), got["ContentType"]]


if __name__ == "__main__":
    main()
