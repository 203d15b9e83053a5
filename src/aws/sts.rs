//! Who is calling: STS `GetCallerIdentity`, whose ARN the record keeps as
//! the sender of an operator command or an approval. AWS answers it for any
//! caller: "No permissions are required to perform this operation" (the STS
//! API reference, GetCallerIdentity), so it needs no IAM statement.

use crate::aws::Aws;
use crate::aws_call;
use crate::ports::PortError;

/// The caller's ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, ...).
pub async fn caller_arn(aws: &Aws) -> Result<String, PortError> {
    let client = aws_sdk_sts::Client::new(&aws.sdk);
    let out = aws_call!(
        aws.calls,
        "GetCallerIdentity",
        client.get_caller_identity().send()
    )?;
    Ok(out.arn().unwrap_or("unknown").to_string())
}
