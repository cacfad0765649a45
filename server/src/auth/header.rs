//! A SigV4 signature as a request carries it: the `Authorization` header
//! (`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`)
//! or a presigned URL's `X-Amz-*` query parameters. Client input from the
//! first byte, so nothing here panics (`fuzz/fuzz_targets/auth_header.rs`).

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub access_key_id: String,
    /// The credential scope: `YYYYMMDD/region/service/aws4_request`.
    pub scope_date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `YYYYMMDD'T'HHMMSS'Z'`, from `X-Amz-Date` (or `Date`).
    pub amz_date: String,
    /// A presigned URL's `X-Amz-Expires`: how long it stays valid.
    pub expires_seconds: Option<u64>,
}

impl Signed {
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.scope_date, self.region, self.service
        )
    }
}

/// Why a signature could not even be read: AWS's
/// `IncompleteSignatureException`, with its wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Incomplete(pub String);

/// The `Authorization` header's signature; `amz_date` is the request's
/// `X-Amz-Date` (or `Date`) header.
pub fn from_header(authorization: &str, amz_date: Option<&str>) -> Result<Signed, Incomplete> {
    let rest = authorization
        .strip_prefix(ALGORITHM)
        .filter(|rest| rest.starts_with(' '))
        .ok_or_else(|| {
            Incomplete(format!(
                "Authorization header requires the '{ALGORITHM}' algorithm. Authorization={authorization}"
            ))
        })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            continue;
        };
        match name.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    let mut missing = String::new();
    for (name, value) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if value.is_none_or(str::is_empty) {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if amz_date.is_none_or(str::is_empty) {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    if !missing.is_empty() {
        return Err(Incomplete(format!(
            "{missing}Authorization={authorization}"
        )));
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(amz_date)) =
        (credential, signed_headers, signature, amz_date)
    else {
        return Err(Incomplete(format!("Authorization={authorization}")));
    };
    signed(credential, signed_headers, signature, amz_date, None)
}

/// A presigned URL's signature; `None` when the query carries none.
pub fn from_query(query: &str) -> Result<Option<Signed>, Incomplete> {
    let mut fields = std::collections::HashMap::new();
    for (name, value) in pairs(query) {
        if name.starts_with("X-Amz-") {
            fields.insert(name, value);
        }
    }
    let Some(algorithm) = fields.get("X-Amz-Algorithm") else {
        return Ok(None);
    };
    if algorithm != ALGORITHM {
        return Err(Incomplete(format!(
            "X-Amz-Algorithm only supports '{ALGORITHM}'"
        )));
    }
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Incomplete(format!("AWS query-string parameters must include '{name}'. Re-examine the query-string parameters.")))
    };
    let expires = field("X-Amz-Expires")?;
    let expires = expires.parse::<u64>().map_err(|_| {
        Incomplete(format!(
            "X-Amz-Expires must be a number of seconds, not '{expires}'"
        ))
    })?;
    signed(
        field("X-Amz-Credential")?,
        field("X-Amz-SignedHeaders")?,
        field("X-Amz-Signature")?,
        field("X-Amz-Date")?,
        Some(expires),
    )
    .map(Some)
}

fn signed(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: &str,
    expires_seconds: Option<u64>,
) -> Result<Signed, Incomplete> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
        return Err(Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != "aws4_request" {
        return Err(Incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
        )));
    }
    Ok(Signed {
        access_key_id: access_key_id.to_string(),
        scope_date: scope_date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed_headers
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect(),
        signature: signature.to_ascii_lowercase(),
        amz_date: amz_date.to_string(),
        expires_seconds,
    })
}

/// The query's `name=value` pairs, percent-decoded.
pub fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name), percent_decode(value))
    })
}

/// SigV4's canonical query string: each name and value encoded as AWS
/// encodes them (all but `A-Za-z0-9-_.~`), sorted by name then value. A
/// presigned URL's own `X-Amz-Signature` is not part of what it signs.
pub fn canonical_query(query: &str, presigned: bool) -> String {
    let mut encoded: Vec<(String, String)> = pairs(query)
        .filter(|(name, _)| !(presigned && name == "X-Amz-Signature"))
        .map(|(name, value)| (aws_encode(&name), aws_encode(&value)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&high), Some(&low)) if hex(high).is_some() && hex(low).is_some() => {
                let value = hex(high).unwrap_or(0) * 16 + hex(low).unwrap_or(0);
                out.push(value as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn aws_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header_botocore_writes() {
        let signed = from_header(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=E6E5",
            Some("20261204T175859Z"),
        )
        .unwrap();
        assert_eq!(signed.access_key_id, "AKIDEXAMPLE");
        assert_eq!(signed.scope(), "20261204/us-east-1/kinesis/aws4_request");
        assert_eq!(
            signed.signed_headers,
            ["content-type", "host", "x-amz-date", "x-amz-target"]
        );
        assert_eq!(signed.signature, "e6e5");
    }

    #[test]
    fn missing_parts_are_named_as_aws_names_them() {
        let error = from_header("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request", None)
            .unwrap_err()
            .0;
        assert!(error.contains("requires 'Signature' parameter"), "{error}");
        assert!(
            error.contains("requires 'SignedHeaders' parameter"),
            "{error}"
        );
        assert!(error.contains("'X-Amz-Date' or a 'Date' header"), "{error}");
        assert!(from_header("Bearer xyz", Some("x")).is_err());
        assert!(
            from_header(
                "AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=0",
                Some("x")
            )
            .is_err()
        );
    }

    #[test]
    fn presigned_queries_sort_and_leave_out_the_signature() {
        let query = "b=2&a=x%2Fy&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=K%2F20261207%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Date=20261207T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=ab";
        let signed = from_query(query).unwrap().unwrap();
        assert_eq!(signed.expires_seconds, Some(60));
        assert_eq!(signed.access_key_id, "K");
        let canonical = canonical_query(query, true);
        assert!(canonical.starts_with("X-Amz-Algorithm="), "{canonical}");
        assert!(canonical.ends_with("a=x%2Fy&b=2"), "{canonical}");
        assert!(!canonical.contains("Signature"), "{canonical}");
        assert_eq!(from_query("a=1").unwrap(), None);
    }

    #[test]
    fn decoding_never_panics_on_stray_percents() {
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(aws_encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
