//! Reading a request's fields with AWS's validation rules: every
//! constraint failure is collected and reported at once, in the
//! `N validation errors detected: Value 'x' at 'field' failed to satisfy
//! constraint: ...` form AWS uses. Kinesis, Firehose and Kinesis Analytics
//! name their resources with the same pattern.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::codec::serialization_error;
use crate::aws::AwsError;

pub const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";

pub fn validation_error(message: impl Into<String>) -> AwsError {
    AwsError::new(StatusCode::BAD_REQUEST, "ValidationException", message)
}

pub fn invalid_argument(message: impl Into<String>) -> AwsError {
    AwsError::new(StatusCode::BAD_REQUEST, "InvalidArgumentException", message)
}

pub struct Req {
    map: Map<String, Value>,
    problems: Vec<String>,
}

fn type_error(field: &str, expected: &str) -> AwsError {
    serialization_error(format!("Field {field} must be {expected}"))
}

/// How a value is quoted in validation messages.
fn shown(value: &str) -> String {
    let mut text: String = value.chars().take(64).collect();
    if value.chars().count() > 64 {
        text.push_str("...");
    }
    format!("'{text}'")
}

impl Req {
    pub fn new(map: Map<String, Value>) -> Self {
        Req {
            map,
            problems: Vec::new(),
        }
    }

    pub fn from_value(value: &Value) -> Result<Self, AwsError> {
        match value {
            Value::Object(map) => Ok(Req::new(map.clone())),
            _ => Err(serialization_error("Expected an object")),
        }
    }

    pub fn from_owned(value: Value) -> Result<Self, AwsError> {
        match value {
            Value::Object(map) => Ok(Req::new(map)),
            _ => Err(serialization_error("Expected an object")),
        }
    }

    /// Moves a list out of the request, for large lists read once.
    pub fn take_list(&mut self, field: &str) -> Result<Option<Vec<Value>>, AwsError> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(type_error(field, "a list")),
        }
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// Records a constraint failure, reported when `finish` is called.
    pub fn problem(&mut self, value: Option<&str>, at: &str, constraint: &str) {
        let value = value.map_or_else(|| "null".to_string(), shown);
        self.problems.push(format!(
            "Value {value} at '{at}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Fails with every constraint failure seen so far.
    pub fn finish(&mut self) -> Result<(), AwsError> {
        if self.problems.is_empty() {
            return Ok(());
        }
        let n = self.problems.len();
        let message = format!(
            "{n} validation error{} detected: {}",
            if n == 1 { "" } else { "s" },
            self.problems.join("; ")
        );
        self.problems.clear();
        Err(validation_error(message))
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<String>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(type_error(field, "a string")),
        }
    }

    /// A required string whose length is checked; a missing one is a
    /// constraint failure named by `at`.
    pub fn str_len(
        &mut self,
        field: &str,
        at: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<String>, AwsError> {
        let value = self.opt_str(field)?;
        match &value {
            None => self.problem(None, at, "Member must not be null"),
            Some(v) => self.check_len(v, at, min, max),
        }
        Ok(value)
    }

    pub fn check_len(&mut self, value: &str, at: &str, min: usize, max: usize) {
        let len = value.chars().count();
        if len < min {
            self.problem(
                Some(value),
                at,
                &format!("Member must have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.problem(
                Some(value),
                at,
                &format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    pub fn check_name(&mut self, value: &str, at: &str) {
        self.check_len(value, at, 1, 128);
        if !value.is_empty()
            && !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        {
            self.problem(
                Some(value),
                at,
                &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
            );
        }
    }

    pub fn opt_int(&self, field: &str) -> Result<Option<i64>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                        .map(|f| f as i64)
                })
                .map(Some)
                .ok_or_else(|| type_error(field, "an integer")),
            Some(_) => Err(type_error(field, "an integer")),
        }
    }

    /// An optional integer that must lie in `min..=max`.
    pub fn int_range(
        &mut self,
        field: &str,
        at: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, AwsError> {
        let value = self.opt_int(field)?;
        if let Some(v) = value {
            if v < min {
                self.problem(
                    Some(&v.to_string()),
                    at,
                    &format!("Member must have value greater than or equal to {min}"),
                );
            } else if v > max {
                self.problem(
                    Some(&v.to_string()),
                    at,
                    &format!("Member must have value less than or equal to {max}"),
                );
            }
        }
        Ok(value)
    }

    pub fn opt_bool(&self, field: &str) -> Result<Option<bool>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(type_error(field, "a boolean")),
        }
    }

    /// Epoch milliseconds from epoch seconds (JSON; CBOR was converted).
    pub fn opt_time_ms(&self, field: &str) -> Result<Option<u64>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| Some((f * 1000.0).round() as u64))
                .ok_or_else(|| type_error(field, "a timestamp")),
            Some(_) => Err(type_error(field, "a timestamp in epoch seconds")),
        }
    }

    pub fn opt_blob(&self, field: &str) -> Result<Option<Vec<u8>>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => STANDARD
                .decode(s)
                .map(Some)
                .map_err(|_| serialization_error(format!("Field {field} is not valid base64"))),
            Some(_) => Err(type_error(field, "a blob")),
        }
    }

    pub fn opt_list(&self, field: &str) -> Result<Option<&Vec<Value>>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(type_error(field, "a list")),
        }
    }

    pub fn opt_str_list(&self, field: &str) -> Result<Option<Vec<String>>, AwsError> {
        self.opt_list(field)?
            .map(|items| {
                items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(type_error(field, "a list of strings")),
                    })
                    .collect()
            })
            .transpose()
    }

    pub fn opt_str_map(&self, field: &str) -> Result<Option<Vec<(String, String)>>, AwsError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(type_error(field, "a map of strings")),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(type_error(field, "a map")),
        }
    }

    pub fn opt_object(&self, field: &str) -> Result<Option<Req>, AwsError> {
        self.get(field).map(Req::from_value).transpose()
    }
}
