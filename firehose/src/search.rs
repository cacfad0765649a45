//! The OpenSearch and Elasticsearch destinations: documents sent with the
//! `_bulk` API, each to its index (rotated by the record's arrival as
//! `IndexRotationPeriod` says), with a document id Firehose makes from the
//! record (so a retried document replaces itself rather than doubling);
//! only the items the cluster failed are sent again.

use std::time::Duration;

use chrono::{Datelike, TimeZone, Utc};
use serde_json::{Value, json};

use crate::error::{FirehoseError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    None,
    Hour,
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone)]
pub struct SearchSettings {
    /// The cluster's URL (`ClusterEndpoint`).
    pub endpoint: String,
    pub index: String,
    /// Elasticsearch 6's `TypeName`, when given.
    pub type_name: Option<String>,
    pub rotation: Rotation,
    pub retry_ms: u64,
    /// `AllDocuments`: every record also goes to the backup bucket.
    pub backup_all: bool,
    /// `DocumentIdOptions` `FIREHOSE_DEFAULT` (the default): ids Firehose
    /// makes; `NO_DOCUMENT_ID`: the cluster makes them.
    pub document_ids: bool,
    /// `AmazonOpenSearchService-failed` or `elasticsearch-failed`.
    pub failed_type: &'static str,
}

fn invalid(message: impl Into<String>) -> FirehoseError {
    FirehoseError::InvalidArgument(message.into())
}

impl SearchSettings {
    /// Reads an `AmazonopensearchserviceDestinationConfiguration` (or the
    /// Elasticsearch one, `elasticsearch` true).
    pub fn parse(config: &Value, elasticsearch: bool) -> Result<SearchSettings> {
        let text = |field: &str| config.get(field).and_then(Value::as_str);
        let endpoint = match (text("ClusterEndpoint"), text("DomainARN")) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(arn)) => {
                return Err(invalid(format!(
                    "DomainARN {arn} names an AWS domain; give the cluster's URL as ClusterEndpoint."
                )));
            }
            (None, None) => return Err(invalid("ClusterEndpoint must be given.")),
        };
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(invalid(format!(
                "ClusterEndpoint '{endpoint}' must be an https:// or http:// URL."
            )));
        }
        let index = text("IndexName")
            .filter(|i| !i.is_empty())
            .ok_or_else(|| invalid("IndexName must be given."))?
            .to_string();
        let rotation = match text("IndexRotationPeriod") {
            None | Some("OneDay") => Rotation::Day,
            Some("NoRotation") => Rotation::None,
            Some("OneHour") => Rotation::Hour,
            Some("OneWeek") => Rotation::Week,
            Some("OneMonth") => Rotation::Month,
            Some(other) => {
                return Err(invalid(format!(
                    "IndexRotationPeriod '{other}' is not one of NoRotation, OneHour, OneDay, OneWeek, OneMonth."
                )));
            }
        };
        let backup_all = match text("S3BackupMode") {
            None | Some("FailedDocumentsOnly") => false,
            Some("AllDocuments") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "S3BackupMode '{other}' is not one of FailedDocumentsOnly, AllDocuments."
                )));
            }
        };
        let document_ids = match config
            .get("DocumentIdOptions")
            .and_then(|o| o.get("DefaultDocumentIdFormat"))
            .and_then(Value::as_str)
        {
            None | Some("FIREHOSE_DEFAULT") => true,
            Some("NO_DOCUMENT_ID") => false,
            Some(other) => {
                return Err(invalid(format!(
                    "DefaultDocumentIdFormat '{other}' is not one of FIREHOSE_DEFAULT, NO_DOCUMENT_ID."
                )));
            }
        };
        let retry_seconds = config
            .get("RetryOptions")
            .and_then(|r| r.get("DurationInSeconds"))
            .and_then(Value::as_u64)
            .unwrap_or(300);
        Ok(SearchSettings {
            endpoint,
            index,
            type_name: text("TypeName")
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            rotation,
            retry_ms: retry_seconds * 1000,
            backup_all,
            document_ids,
            failed_type: if elasticsearch {
                "elasticsearch-failed"
            } else {
                "AmazonOpenSearchService-failed"
            },
        })
    }

    /// The index a record arriving at `arrival_ms` goes to: the name, then
    /// the UTC arrival as the rotation period has it.
    pub fn index_for(&self, arrival_ms: u64) -> String {
        let at = Utc
            .timestamp_millis_opt(i64::try_from(arrival_ms).unwrap_or(i64::MAX))
            .single()
            .unwrap_or_default();
        match self.rotation {
            Rotation::None => self.index.clone(),
            Rotation::Hour => format!("{}-{}", self.index, at.format("%Y-%m-%d-%H")),
            Rotation::Day => format!("{}-{}", self.index, at.format("%Y-%m-%d")),
            Rotation::Week => {
                let week = at.iso_week();
                format!("{}-{}-w{:02}", self.index, week.year(), week.week())
            }
            Rotation::Month => format!("{}-{}", self.index, at.format("%Y-%m")),
        }
    }
}

/// One document of a bulk request.
#[derive(Debug, Clone)]
pub struct Document {
    pub id: Option<String>,
    pub index: String,
    pub body: Vec<u8>,
}

/// Each document's outcome in a `_bulk` answer: None for success, else why.
pub fn bulk(
    settings: &SearchSettings,
    documents: &[&Document],
) -> std::result::Result<Vec<Option<String>>, String> {
    let mut body = Vec::new();
    for document in documents {
        let mut action = json!({"_index": document.index});
        if let Some(id) = &document.id {
            action["_id"] = json!(id);
        }
        if let Some(kind) = &settings.type_name {
            action["_type"] = json!(kind);
        }
        body.extend_from_slice(json!({ "index": action }).to_string().as_bytes());
        body.push(b'\n');
        body.extend_from_slice(&document.body);
        body.push(b'\n');
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut response = agent
        .post(&format!("{}/_bulk", settings.endpoint))
        .header("Content-Type", "application/x-ndjson")
        .send(&body[..])
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap_or_default();
    if status != 200 {
        return Err(format!(
            "the cluster answered HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    let answer: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the cluster's _bulk answer is not JSON: {e}"))?;
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .ok_or("the cluster's _bulk answer has no items")?;
    if items.len() != documents.len() {
        return Err(format!(
            "the cluster answered {} items for {} documents",
            items.len(),
            documents.len()
        ));
    }
    Ok(items
        .iter()
        .map(|item| {
            let result = item.get("index").or_else(|| item.get("create"))?;
            let status = result.get("status").and_then(Value::as_u64).unwrap_or(0);
            if (200..300).contains(&status) {
                None
            } else {
                Some(result.get("error").map_or_else(
                    || format!("status {status}"),
                    |e| format!("status {status}: {e}"),
                ))
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_rotate_by_the_arrival_in_utc() {
        // 2026-12-05T07:08:09Z, a Saturday of ISO week 49.
        let at = 1_796_454_489_123;
        let mut settings = SearchSettings::parse(
            &json!({"ClusterEndpoint": "http://127.0.0.1:9200/", "IndexName": "logs"}),
            false,
        )
        .unwrap();
        assert_eq!(settings.endpoint, "http://127.0.0.1:9200");
        assert_eq!(settings.index_for(at), "logs-2026-12-05");
        for (rotation, name) in [
            (Rotation::None, "logs"),
            (Rotation::Hour, "logs-2026-12-05-07"),
            (Rotation::Week, "logs-2026-w49"),
            (Rotation::Month, "logs-2026-12"),
        ] {
            settings.rotation = rotation;
            assert_eq!(settings.index_for(at), name);
        }
        let error = SearchSettings::parse(
            &json!({"DomainARN": "arn:aws:es:us-east-1:1:domain/d", "IndexName": "i"}),
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("ClusterEndpoint"), "{error}");
    }
}
