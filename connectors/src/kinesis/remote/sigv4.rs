//! AWS Signature Version 4 for POSTs, as the AWS SDKs sign them: JSON 1.1
//! to `/` with an `x-amz-target`, or REST-JSON to a path (Kinesis Video):
//! what an endpoint that checks signatures (AWS itself) needs from the
//! connector.

use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The request's headers to add: `x-amz-date`, `authorization`, and the
/// session token's when there is one. `amz_date` is `YYYYMMDD'T'HHMMSS'Z'`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    credentials: &Credentials,
    region: &str,
    service: &str,
    host: &str,
    path: &str,
    target: Option<&str>,
    content_type: &str,
    body: &[u8],
    amz_date: &str,
) -> Vec<(&'static str, String)> {
    let date = &amz_date[..amz_date.len().min(8)];
    let mut headers = vec![
        ("content-type", content_type.to_string()),
        ("host", host.to_string()),
        ("x-amz-date", amz_date.to_string()),
    ];
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token", token.clone()));
    }
    if let Some(target) = target {
        headers.push(("x-amz-target", target.to_string()));
    }
    let signed: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
    let signed = signed.join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", value.trim()))
        .collect();
    let canonical_request = format!(
        "POST\n{path}\n\n{canonical_headers}\n{signed}\n{}",
        hex(&Sha256::digest(body))
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let signature = signature_of(
        &credentials.secret_access_key,
        amz_date,
        [date, region, service],
        &canonical_request,
    );
    let mut out = vec![
        ("x-amz-date", amz_date.to_string()),
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
                credentials.access_key_id
            ),
        ),
    ];
    if let Some(token) = &credentials.session_token {
        out.push(("x-amz-security-token", token.clone()));
    }
    out
}

/// The signature `secret` gives a canonical request, signed at `amz_date`
/// within the scope (date, region, service): what a client sends and what
/// a server that checks signatures recomputes.
pub fn signature_of(
    secret: &str,
    amz_date: &str,
    [date, region, service]: [&str; 3],
    canonical_request: &str,
) -> String {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = [date, region, service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
            hmac(&key, part.as_bytes()).to_vec()
        });
    hex(&hmac(&key, string_to_sign.as_bytes()))
}

/// HMAC-SHA256 (RFC 2104); HLS session tokens are sealed with it too.
pub fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of AWS's own SigV4 examples.
    fn example_credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    /// The signature botocore's `SigV4Auth` gives the same request.
    #[test]
    fn signs_as_botocore_does() {
        let credentials = example_credentials();
        let headers = sign(
            &credentials,
            "us-east-1",
            "kinesis",
            "127.0.0.1:4567",
            "/",
            Some("Kinesis_20131202.DescribeStreamSummary"),
            "application/x-amz-json-1.1",
            br#"{"StreamName":"s"}"#,
            "20261204T175859Z",
        );
        let authorization = &headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap()
            .1;
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=e6e568edbfeb833995e513d1155c12705d2eea4a14b154926a49ceec17a9c865"
        );
    }

    /// A REST-JSON request to a path, as botocore signs Kinesis Video's.
    #[test]
    fn signs_a_path_as_botocore_does() {
        let credentials = example_credentials();
        let headers = sign(
            &credentials,
            "us-east-1",
            "kinesisvideo",
            "127.0.0.1:4567",
            "/listFragments",
            None,
            "application/json",
            br#"{"StreamName":"s"}"#,
            "20261206T210538Z",
        );
        let authorization = &headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap()
            .1;
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/us-east-1/kinesisvideo/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=564100ed14010c4e962a0932ca54ab5de9786c6732ae6a0853bd76feadeffeae"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
