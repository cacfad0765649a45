//! Checking a SigV4 signature: the canonical request rebuilt from what
//! arrived, signed with the key's secret, compared with what the client
//! sent; and the date within the skew AWS allows.

use axum::http::{HeaderMap, Method, Uri};
use chrono::{DateTime, NaiveDateTime, Utc};
use runnel_connectors::kinesis::remote::sigv4::{hex, signature_of};
use sha2::{Digest, Sha256};

use super::header::{self, Signed};

/// How far a signed date may be from the server's clock, as AWS allows.
pub const MAX_SKEW_SECONDS: i64 = 5 * 60;
/// The hash a body was signed as when its signature does not cover it.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// What arrived, as the signature covers it.
pub struct Arrived<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn canonical_request(arrived: &Arrived<'_>, signed: &Signed, payload_hash: &str) -> String {
    let path = match arrived.uri.path() {
        "" => "/",
        path => path,
    };
    let query = header::canonical_query(
        arrived.uri.query().unwrap_or_default(),
        signed.expires_seconds.is_some(),
    );
    let mut canonical_headers = String::new();
    for name in &signed.signed_headers {
        let mut values: Vec<String> = arrived
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        // An HTTP/2 request names its host in `:authority`, not `host`.
        if values.is_empty() && name == "host" {
            values.extend(arrived.uri.authority().map(|a| a.as_str().to_string()));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{}\n{path}\n{query}\n{canonical_headers}\n{}\n{payload_hash}",
        arrived.method.as_str(),
        signed.signed_headers.join(";"),
    )
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The signature `secret` gives this canonical request.
pub fn signature(secret: &str, signed: &Signed, canonical_request: &str) -> String {
    signature_of(
        secret,
        &signed.amz_date,
        [&signed.scope_date, &signed.region, &signed.service],
        canonical_request,
    )
}

/// Compares in time that does not depend on where they differ, so the
/// answer's timing does not give the signature away byte by byte.
pub fn same(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> bool {
    let (a, b) = (a.as_ref(), b.as_ref());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a date is not acceptable, in AWS's words.
pub fn check_date(signed: &Signed, now: DateTime<Utc>) -> Result<(), String> {
    let at = NaiveDateTime::parse_from_str(&signed.amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| {
            format!(
                "Invalid date format '{}': it must be ISO-8601 basic, YYYYMMDD'T'HHMMSS'Z'",
                signed.amz_date
            )
        })?
        .and_utc();
    if !signed.amz_date.starts_with(&signed.scope_date) {
        return Err(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            signed.scope_date,
            &signed.amz_date[..signed.amz_date.len().min(8)],
            signed.amz_date
        ));
    }
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let skew = chrono::Duration::seconds(MAX_SKEW_SECONDS);
    if at > now + skew {
        return Err(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            signed.amz_date,
            stamp(now + skew),
            stamp(now)
        ));
    }
    match signed.expires_seconds {
        None if at < now - skew => Err(format!(
            "Signature expired: {} is now earlier than {} ({} - 5 min.)",
            signed.amz_date,
            stamp(now - skew),
            stamp(now)
        )),
        Some(expires) => {
            let expires = i64::try_from(expires)
                .unwrap_or(i64::MAX)
                .min(7 * 24 * 3600);
            let end = at + chrono::Duration::seconds(expires);
            if end < now {
                return Err(format!(
                    "Signature expired: {} is now earlier than {} ({} - {expires} sec.)",
                    stamp(end),
                    stamp(now),
                    signed.amz_date
                ));
            }
            Ok(())
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_connectors::kinesis::remote::sigv4::{Credentials, sign};

    /// What the connector's signer (checked against botocore) signs, this
    /// side accepts; a changed body or secret it does not.
    #[test]
    fn accepts_what_botocore_signs_and_nothing_else() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let body = br#"{"StreamName":"s"}"#;
        let added = sign(
            &credentials,
            "us-east-1",
            "kinesis",
            "127.0.0.1:4567",
            "/",
            Some("Kinesis_20131202.DescribeStreamSummary"),
            "application/x-amz-json-1.1",
            body,
            "20261204T175859Z",
        );
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:4567".parse().unwrap());
        headers.insert(
            "content-type",
            "application/x-amz-json-1.1".parse().unwrap(),
        );
        headers.insert(
            "x-amz-target",
            "Kinesis_20131202.DescribeStreamSummary".parse().unwrap(),
        );
        for (name, value) in &added {
            headers.insert(*name, value.parse().unwrap());
        }
        let signed = header::from_header(
            headers["authorization"].to_str().unwrap(),
            Some("20261204T175859Z"),
        )
        .unwrap();
        let uri: Uri = "/".parse().unwrap();
        let arrived = Arrived {
            method: &Method::POST,
            uri: &uri,
            headers: &headers,
        };
        let expected = |secret: &str, body: &[u8]| {
            signature(
                secret,
                &signed,
                &canonical_request(&arrived, &signed, &sha256_hex(body)),
            )
        };
        assert!(same(
            expected(&credentials.secret_access_key, body),
            &signed.signature
        ));
        assert!(!same(expected("wrong", body), &signed.signature));
        assert!(!same(
            expected(&credentials.secret_access_key, b"{}"),
            &signed.signature
        ));
    }

    #[test]
    fn dates_outside_the_skew_or_past_their_expiry_are_refused() {
        let signed = |amz_date: &str, expires| Signed {
            access_key_id: "K".into(),
            scope_date: amz_date[..8].into(),
            region: "us-east-1".into(),
            service: "kinesis".into(),
            signed_headers: vec!["host".into()],
            signature: String::new(),
            amz_date: amz_date.into(),
            expires_seconds: expires,
        };
        let now = NaiveDateTime::parse_from_str("20261207T010000Z", "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc();
        assert!(check_date(&signed("20261207T005600Z", None), now).is_ok());
        let expired = check_date(&signed("20261207T005000Z", None), now).unwrap_err();
        assert_eq!(
            expired,
            "Signature expired: 20261207T005000Z is now earlier than 20261207T005500Z (20261207T010000Z - 5 min.)"
        );
        assert!(check_date(&signed("20261207T010600Z", None), now).is_err());
        assert!(check_date(&signed("20261207T005000Z", Some(900)), now).is_ok());
        assert!(check_date(&signed("20261207T005000Z", Some(60)), now).is_err());
        let mut wrong_scope = signed("20261207T010000Z", None);
        wrong_scope.scope_date = "20261206".into();
        assert!(check_date(&wrong_scope, now).is_err());
    }
}
