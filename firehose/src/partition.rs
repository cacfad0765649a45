//! Dynamic partitioning: a `MetadataExtraction` query (jq) gives each
//! record its partition keys, and records with the same keys share a
//! buffer of their own, with the stream's hints, delivered under the
//! prefix those keys fill in (`!{partitionKeyFromQuery:k}`).

use std::collections::BTreeMap;
use std::sync::Arc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

use crate::error::{FirehoseError, Result};

/// A record's partition: its keys, or why it has none.
pub type Keys = BTreeMap<String, String>;

#[derive(Clone)]
pub struct Query {
    text: String,
    filter: Arc<jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Query").field(&self.text).finish()
    }
}

impl Query {
    /// Compiles a `MetadataExtractionQuery`, refusing one jq would.
    pub fn compile(text: &str) -> Result<Query> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(
                &arena,
                File {
                    code: text,
                    path: (),
                },
            )
            .map_err(|errors| {
                FirehoseError::InvalidArgument(format!(
                    "MetadataExtractionQuery '{text}' does not parse as jq: {errors:?}"
                ))
            })?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| {
                FirehoseError::InvalidArgument(format!(
                    "MetadataExtractionQuery '{text}' does not compile: {errors:?}"
                ))
            })?;
        Ok(Query {
            text: text.to_string(),
            filter: Arc::new(filter),
        })
    }

    /// The partition keys of one record: the query's one output, an object
    /// of scalars. Err says why the record cannot be partitioned.
    pub fn keys(&self, record: &[u8]) -> std::result::Result<Keys, String> {
        let input = jaq_json::read::parse_single(record)
            .map_err(|e| format!("the record is not JSON: {e}"))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = self.filter.id.run((ctx, input)).map(unwrap_valr);
        let output = match outputs.next() {
            Some(Ok(value)) => value,
            Some(Err(error)) => return Err(format!("the query failed: {error}")),
            None => return Err("the query gave no value".into()),
        };
        let Val::Obj(map) = output else {
            return Err(format!("the query gave {output}, not an object of keys"));
        };
        let mut keys = Keys::new();
        for (key, value) in map.iter() {
            let value = match value {
                Val::Null => return Err(format!("partition key {key} is null")),
                Val::TStr(text) | Val::BStr(text) => String::from_utf8_lossy(text).into_owned(),
                Val::Arr(_) | Val::Obj(_) => {
                    return Err(format!("partition key {key} is {value}, not a scalar"));
                }
                other => other.to_string(),
            };
            let key = match key {
                Val::TStr(text) | Val::BStr(text) => String::from_utf8_lossy(text).into_owned(),
                other => other.to_string(),
            };
            keys.insert(key, value);
        }
        Ok(keys)
    }
}

/// Lambda keys sit in a partition's `Keys` under this prefix, apart from
/// the query's: a jq object key never starts with NUL in practice, and the
/// label stays the plain map it was before Lambda keys existed.
const LAMBDA_KEY: &str = "\u{0}lambda:";

pub fn lambda_key(name: &str) -> String {
    format!("{LAMBDA_KEY}{name}")
}

/// How a delivery stream gives each record its partition: a query's keys,
/// a Lambda's (`metadata.partitionKeys`), or both; and the keys its prefix
/// names, which every record must have.
#[derive(Debug, Clone)]
pub struct Partitioning {
    pub query: Option<Query>,
    /// `(from Lambda, key)` for each `partitionKeyFrom...` in the prefix.
    pub named: Vec<(bool, String)>,
}

impl Partitioning {
    pub fn uses_lambda_keys(&self) -> bool {
        self.named.iter().any(|(lambda, _)| *lambda)
    }

    /// A record's keys: the query's on its data, and the Lambda's; Err
    /// says why it has no partition (it goes to `partitioning-failed`).
    pub fn keys(
        &self,
        data: &[u8],
        lambda_keys: Option<&Keys>,
    ) -> std::result::Result<Keys, String> {
        let mut keys = match &self.query {
            Some(query) => query.keys(data)?,
            None => Keys::new(),
        };
        for (key, value) in lambda_keys.into_iter().flatten() {
            keys.insert(lambda_key(key), value.clone());
        }
        for (lambda, key) in &self.named {
            let stored = if *lambda {
                lambda_key(key)
            } else {
                key.clone()
            };
            if !keys.contains_key(&stored) {
                let source = if *lambda {
                    "the Lambda's metadata.partitionKeys"
                } else {
                    "the MetadataExtractionQuery"
                };
                return Err(format!("{source} gave no partition key {key}"));
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_give_each_record_its_keys_or_say_why_not() {
        let query = Query::compile("{customer: .customer_id, year: .ts[0:4]}").unwrap();
        let keys = query
            .keys(br#"{"customer_id": 42, "ts": "2026-12-05"}"#)
            .unwrap();
        assert_eq!(
            keys,
            Keys::from([
                ("customer".into(), "42".into()),
                ("year".into(), "2026".into())
            ])
        );
        assert!(query.keys(b"not json").unwrap_err().contains("not JSON"));
        assert!(
            query
                .keys(br#"{"ts": "2026"}"#)
                .unwrap_err()
                .contains("null")
        );
        assert!(Query::compile("{a: .b").is_err());
    }

    #[test]
    fn lambda_keys_and_query_keys_are_kept_apart_and_required_when_named() {
        let partitioning = Partitioning {
            query: Some(Query::compile("{id: .id}").unwrap()),
            named: vec![(false, "id".into()), (true, "id".into())],
        };
        let from_lambda = Keys::from([("id".to_string(), "L".to_string())]);
        let keys = partitioning
            .keys(br#"{"id": "Q"}"#, Some(&from_lambda))
            .unwrap();
        assert_eq!(keys.get("id").map(String::as_str), Some("Q"));
        assert_eq!(keys.get(&lambda_key("id")).map(String::as_str), Some("L"));
        let missing = partitioning.keys(br#"{"id": "Q"}"#, None).unwrap_err();
        assert!(missing.contains("Lambda"), "{missing}");
    }
}
