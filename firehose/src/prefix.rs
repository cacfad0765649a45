//! Object keys: the `Prefix` and `ErrorOutputPrefix` expressions
//! (`!{timestamp:<Java pattern>}`, `!{firehose:random-string}`,
//! `!{firehose:error-output-type}`, `!{partitionKeyFromQuery:k}`,
//! `!{partitionKeyFromLambda:k}`) and the default key Firehose writes
//! after them.

use chrono::format::Item;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{FirehoseError, Result};

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Timestamp(Vec<Item<'static>>),
    RandomString,
    ErrorOutputType,
    QueryKey(String),
    LambdaKey(String),
}

/// A parsed prefix expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefix {
    parts: Vec<Part>,
}

/// What a prefix is evaluated with for one object.
pub struct KeyContext<'a> {
    /// Arrival of the object's oldest record, epoch milliseconds.
    pub oldest_arrival_ms: u64,
    pub zone: Option<Tz>,
    /// 11 characters that stay the same when the same object is written
    /// again after a crash, so its key does too.
    pub random: &'a str,
    pub error_output_type: Option<&'a str>,
    /// The object's partition keys, with dynamic partitioning.
    pub partition: Option<&'a crate::partition::Keys>,
}

fn invalid(message: String) -> FirehoseError {
    FirehoseError::InvalidArgument(message)
}

impl Prefix {
    /// Parses `text`, refusing expressions Firehose does not know in the
    /// words it uses.
    pub fn parse(text: &str) -> Result<Prefix> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("!{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| {
                invalid(format!(
                    "The expression starting at '{}' in prefix '{text}' is not closed with '}}'.",
                    &rest[start..]
                ))
            })?;
            let expression = &after[..end];
            parts.push(parse_expression(expression, text)?);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Prefix { parts })
    }

    pub fn has_expressions(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Literal(_)))
    }

    pub fn has_timestamp(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Timestamp(_)))
    }

    pub fn uses_lambda_keys(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::LambdaKey(_)))
    }

    pub fn has_error_output_type(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::ErrorOutputType))
    }

    /// The partition keys the prefix names: `(from Lambda, key)`.
    pub fn partition_keys(&self) -> Vec<(bool, String)> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::QueryKey(k) => Some((false, k.clone())),
                Part::LambdaKey(k) => Some((true, k.clone())),
                _ => None,
            })
            .collect()
    }

    /// Appends `!{timestamp:yyyy/MM/dd/HH/}`, what Firehose adds to a prefix
    /// without a timestamp expression.
    pub fn with_default_timestamp(mut self) -> Prefix {
        self.parts.push(Part::Timestamp(hourly_items()));
        self
    }

    /// `!{timestamp:yyyy/MM/dd/HH/}` alone.
    pub fn hourly() -> Prefix {
        Prefix { parts: Vec::new() }.with_default_timestamp()
    }

    pub fn evaluate(&self, context: &KeyContext<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Timestamp(items) => {
                    out.push_str(&format_time(context.oldest_arrival_ms, context.zone, items))
                }
                Part::RandomString => out.push_str(context.random),
                Part::ErrorOutputType => out.push_str(context.error_output_type.unwrap_or("")),
                Part::QueryKey(key) => {
                    if let Some(value) = context.partition.and_then(|keys| keys.get(key)) {
                        out.push_str(value);
                    }
                }
                Part::LambdaKey(key) => {
                    let stored = crate::partition::lambda_key(key);
                    if let Some(value) = context.partition.and_then(|keys| keys.get(&stored)) {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

fn parse_expression(expression: &str, prefix: &str) -> Result<Part> {
    let (namespace, argument) = expression.split_once(':').ok_or_else(|| {
        invalid(format!(
            "The expression '!{{{expression}}}' in prefix '{prefix}' has no namespace; expressions are !{{namespace:value}}."
        ))
    })?;
    match namespace {
        "timestamp" => runnel_timefmt::translate(argument)
            .map(Part::Timestamp)
            .map_err(|why| {
                invalid(format!(
                    "The timestamp format '{argument}' in prefix '{prefix}' is not valid: {why}."
                ))
            }),
        "firehose" => match argument {
            "random-string" => Ok(Part::RandomString),
            "error-output-type" => Ok(Part::ErrorOutputType),
            other => Err(invalid(format!(
                "'{other}' in prefix '{prefix}' is not a firehose namespace value; use random-string or error-output-type."
            ))),
        },
        "partitionKeyFromQuery" => Ok(Part::QueryKey(argument.to_string())),
        "partitionKeyFromLambda" => Ok(Part::LambdaKey(argument.to_string())),
        other => Err(invalid(format!(
            "The namespace '{other}' in prefix '{prefix}' is not valid; use timestamp, firehose, partitionKeyFromQuery or partitionKeyFromLambda."
        ))),
    }
}

fn hourly_items() -> Vec<Item<'static>> {
    // A fixed pattern that translates.
    runnel_timefmt::translate("yyyy/MM/dd/HH/").unwrap_or_default()
}

fn format_time(ms: u64, zone: Option<Tz>, items: &[Item<'static>]) -> String {
    let utc: DateTime<Utc> = Utc
        .timestamp_millis_opt(i64::try_from(ms).unwrap_or(i64::MAX))
        .single()
        .unwrap_or_default();
    match zone {
        Some(zone) => utc
            .with_timezone(&zone)
            .format_with_items(items.iter())
            .to_string(),
        None => utc.format_with_items(items.iter()).to_string(),
    }
}

/// The file name Firehose gives an object after its prefix:
/// `<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>`.
pub fn object_name(stream: &str, version: u64, context: &KeyContext<'_>, uuid: &str) -> String {
    let items = runnel_timefmt::translate("yyyy-MM-dd-HH-mm-ss").unwrap_or_default();
    format!(
        "{stream}-{version}-{}-{uuid}",
        format_time(context.oldest_arrival_ms, context.zone, &items)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(ms: u64) -> KeyContext<'static> {
        KeyContext {
            oldest_arrival_ms: ms,
            zone: None,
            random: "abcdefghijk",
            error_output_type: Some("processing-failed"),
            partition: None,
        }
    }

    // 2026-12-05T07:08:09.123Z
    const T: u64 = 1_796_454_489_123;

    #[test]
    fn expressions_are_evaluated_with_the_oldest_arrival() {
        let prefix = Prefix::parse(
            "logs/!{timestamp:yyyy/MM/dd}/!{firehose:random-string}/!{firehose:error-output-type}/",
        )
        .unwrap();
        assert!(prefix.has_expressions() && prefix.has_timestamp());
        assert_eq!(
            prefix.evaluate(&context(T)),
            "logs/2026/12/05/abcdefghijk/processing-failed/"
        );
    }

    #[test]
    fn a_prefix_without_a_timestamp_gets_the_hourly_default() {
        let prefix = Prefix::parse("raw/").unwrap().with_default_timestamp();
        assert_eq!(prefix.evaluate(&context(T)), "raw/2026/12/05/07/");
        assert_eq!(
            object_name("orders", 1, &context(T), "u"),
            "orders-1-2026-12-05-07-08-09-u"
        );
    }

    #[test]
    fn a_custom_time_zone_moves_the_hour() {
        let prefix = Prefix::parse("!{timestamp:yyyy-MM-dd HH}").unwrap();
        let mut at = context(T);
        at.zone = Some(chrono_tz::Asia::Tokyo);
        assert_eq!(prefix.evaluate(&at), "2026-12-05 16");
    }

    #[test]
    fn unknown_expressions_are_refused_by_name() {
        for (text, words) in [
            ("a/!{nope:x}/", "namespace 'nope'"),
            ("a/!{firehose:other}", "'other'"),
            ("a/!{timestamp:yyyy", "not closed"),
            ("a/!{timestamp}", "no namespace"),
        ] {
            let error = Prefix::parse(text).unwrap_err().to_string();
            assert!(error.contains(words), "{text}: {error}");
        }
    }
}
