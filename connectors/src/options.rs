//! A table's `WITH (...)` options, read the way Flink reads them: every
//! option must be known to the connector or its format, or the job is
//! rejected naming it.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::ConnectorError;

#[derive(Debug)]
pub struct Options {
    values: BTreeMap<String, String>,
    read: RefCell<BTreeSet<String>>,
}

impl Options {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Options {
            values,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.read.borrow_mut().insert(key.to_string());
        self.values.get(key).map(String::as_str)
    }

    pub fn required(&self, key: &str) -> Result<&str, ConnectorError> {
        self.get(key)
            .ok_or_else(|| ConnectorError::Option(format!("missing required option '{key}'")))
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ConnectorError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ConnectorError::Option(format!(
                "option '{key}' must be true or false, got '{v}'"
            ))),
        }
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, ConnectorError> {
        self.get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    ConnectorError::Option(format!(
                        "option '{key}' must be a whole number, got '{v}'"
                    ))
                })
            })
            .transpose()
    }

    /// Fails naming every option nobody asked for: a typo is not ignored.
    pub fn reject_unknown(&self) -> Result<(), ConnectorError> {
        let read = self.read.borrow();
        let unknown: Vec<&str> = self
            .values
            .keys()
            .filter(|k| !read.contains(*k))
            .map(String::as_str)
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(ConnectorError::Option(format!(
                "unsupported options: {}",
                unknown.join(", ")
            )))
        }
    }
}

/// Flink's durations: a number with a unit (`10 s`, `250ms`, `1 min`), or
/// a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => number,
        "s" | "sec" | "secs" | "second" | "seconds" => number.checked_mul(1000)?,
        "min" | "m" | "minute" | "minutes" => number.checked_mul(60_000)?,
        "h" | "hour" | "hours" => number.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}
