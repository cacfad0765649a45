//! Request shapes from botocore's service models (written by
//! `scripts/aws_shapes.py` into `shapes/<service>.json`): the type of every
//! member of every operation's input. A member of the wrong type is refused
//! whatever the operation reads of it, as AWS refuses it, and a CBOR body
//! is read by its shape, so that bytes are taken only where a blob is
//! expected and a bignum nowhere.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::aws::AwsError;
use crate::aws::codec::serialization_error;

/// Nesting deeper than any AWS request, so a hostile body cannot exhaust
/// the stack.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug)]
enum Shape {
    Structure(HashMap<String, String>),
    List(String),
    /// A map's values; its keys are strings.
    Map(String),
    String,
    Integer,
    Float,
    Boolean,
    Blob,
    Timestamp,
}

/// One service's request shapes.
#[derive(Debug)]
pub struct Model {
    operations: HashMap<String, String>,
    shapes: HashMap<String, Shape>,
}

macro_rules! model {
    ($name:ident, $file:literal) => {
        pub static $name: LazyLock<Model> = LazyLock::new(|| {
            Model::parse(include_str!($file))
                .expect(concat!($file, " is written by scripts/aws_shapes.py"))
        });
    };
}

model!(KINESIS, "shapes/kinesis.json");
model!(FIREHOSE, "shapes/firehose.json");
model!(KINESIS_ANALYTICS, "shapes/kinesisanalyticsv2.json");
model!(KINESIS_VIDEO, "shapes/kinesisvideo.json");
model!(KINESIS_VIDEO_MEDIA, "shapes/kinesis-video-media.json");
model!(
    KINESIS_VIDEO_ARCHIVED,
    "shapes/kinesis-video-archived-media.json"
);

impl Model {
    fn parse(text: &str) -> Result<Model, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let text_of = |v: &Value| v.as_str().map(str::to_string).ok_or("a name is not text");
        let operations = value["operations"]
            .as_object()
            .ok_or("no operations")?
            .iter()
            .map(|(op, input)| Ok((op.clone(), text_of(input)?)))
            .collect::<Result<_, &str>>()?;
        let mut shapes = HashMap::new();
        for (name, shape) in value["shapes"].as_object().ok_or("no shapes")? {
            let parsed = match shape["type"].as_str().unwrap_or_default() {
                "structure" => Shape::Structure(
                    shape["members"]
                        .as_object()
                        .ok_or("a structure without members")?
                        .iter()
                        .map(|(m, s)| Ok((m.clone(), text_of(s)?)))
                        .collect::<Result<_, &str>>()?,
                ),
                "list" => Shape::List(text_of(&shape["member"])?),
                "map" => Shape::Map(text_of(&shape["value"])?),
                "string" => Shape::String,
                "integer" | "long" => Shape::Integer,
                "float" | "double" => Shape::Float,
                "boolean" => Shape::Boolean,
                "blob" => Shape::Blob,
                "timestamp" => Shape::Timestamp,
                other => return Err(format!("shape {name} has type '{other}'")),
            };
            shapes.insert(name.clone(), parsed);
        }
        Ok(Model { operations, shapes })
    }

    /// The input shape of `operation`, if the model has it.
    pub fn input(&self, operation: &str) -> Option<&str> {
        self.operations.get(operation).map(String::as_str)
    }

    /// Refuses a JSON body whose members have the wrong types for `shape`.
    pub fn check_json(&self, shape: &str, value: &Value) -> Result<(), AwsError> {
        self.check(shape, value, 0)
    }

    fn check(&self, shape: &str, value: &Value, depth: usize) -> Result<(), AwsError> {
        if depth > MAX_DEPTH {
            return Err(serialization_error("The request is nested too deeply"));
        }
        let Some(kind) = self.shapes.get(shape) else {
            return Ok(());
        };
        if value.is_null() {
            return Ok(());
        }
        match (kind, value) {
            (Shape::Structure(members), Value::Object(map)) => {
                for (name, member) in map {
                    if let Some(member_shape) = members.get(name) {
                        self.check(member_shape, member, depth + 1)?;
                    }
                }
                Ok(())
            }
            (Shape::List(member), Value::Array(items)) => items
                .iter()
                .try_for_each(|item| self.check(member, item, depth + 1)),
            (Shape::Map(member), Value::Object(map)) => map
                .values()
                .try_for_each(|item| self.check(member, item, depth + 1)),
            (Shape::String | Shape::Blob, Value::String(_))
            | (Shape::Boolean, Value::Bool(_))
            | (Shape::Float | Shape::Timestamp, Value::Number(_)) => Ok(()),
            (Shape::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(()),
            (expected, found) => Err(mismatch(expected, found_json(found))),
        }
    }

    /// A CBOR value read by `shape` into the JSON tree handlers read: byte
    /// strings where blobs are expected become base64 text, tag-1
    /// timestamps in epoch milliseconds become epoch seconds; any other
    /// type where the shape expects something else is refused. Members the
    /// shape does not know are converted as they come (bytes as base64).
    pub fn cbor(
        &self,
        shape: Option<&str>,
        value: ciborium::Value,
        depth: usize,
    ) -> Result<Value, AwsError> {
        use ciborium::Value as C;
        if depth > MAX_DEPTH {
            return Err(serialization_error(
                "CBOR request body is nested too deeply",
            ));
        }
        let kind = shape.and_then(|s| self.shapes.get(s));
        Ok(match (kind, value) {
            (_, C::Null) => Value::Null,
            (Some(Shape::Structure(members)), C::Map(entries)) => {
                let mut map = Map::new();
                for (key, item) in entries {
                    let C::Text(key) = key else {
                        return Err(serialization_error("CBOR map keys must be text"));
                    };
                    let member = members.get(&key).map(String::as_str);
                    map.insert(key, self.cbor(member, item, depth + 1)?);
                }
                Value::Object(map)
            }
            (Some(Shape::Map(member)), C::Map(entries)) => {
                let mut map = Map::new();
                for (key, item) in entries {
                    let C::Text(key) = key else {
                        return Err(serialization_error("CBOR map keys must be text"));
                    };
                    map.insert(key, self.cbor(Some(member), item, depth + 1)?);
                }
                Value::Object(map)
            }
            (Some(Shape::List(member)), C::Array(items)) => Value::Array(
                items
                    .into_iter()
                    .map(|item| self.cbor(Some(member), item, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            (Some(Shape::String), C::Text(text)) => Value::String(text),
            (Some(Shape::Blob), C::Bytes(bytes)) => Value::String(STANDARD.encode(bytes)),
            // The JSON protocol's blobs are base64 text; some clients send
            // that over CBOR too.
            (Some(Shape::Blob), C::Text(text)) => Value::String(text),
            (Some(Shape::Boolean), C::Bool(b)) => Value::Bool(b),
            (Some(Shape::Integer), C::Integer(i)) => integer(i)?,
            (Some(Shape::Float), C::Integer(i)) => integer(i)?,
            (Some(Shape::Float), C::Float(f)) => number(f),
            (Some(Shape::Timestamp), C::Tag(1, inner)) => match *inner {
                C::Integer(i) => number(i128::from(i) as f64 / 1000.0),
                C::Float(f) => number(f / 1000.0),
                _ => return Err(serialization_error("CBOR timestamp must be a number")),
            },
            (Some(Shape::Timestamp), C::Integer(i)) => integer(i)?,
            (Some(Shape::Timestamp), C::Float(f)) => number(f),
            (Some(expected), found) => return Err(mismatch(expected, found_cbor(&found))),
            (None, value) => untyped(value, depth)?,
        })
    }
}

fn integer(i: ciborium::value::Integer) -> Result<Value, AwsError> {
    let i = i128::from(i);
    if let Ok(v) = i64::try_from(i) {
        Ok(Value::from(v))
    } else if let Ok(v) = u64::try_from(i) {
        Ok(Value::from(v))
    } else {
        Err(serialization_error("CBOR integer out of range"))
    }
}

fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A member no shape describes, converted as it comes.
fn untyped(value: ciborium::Value, depth: usize) -> Result<Value, AwsError> {
    use ciborium::Value as C;
    if depth > MAX_DEPTH {
        return Err(serialization_error(
            "CBOR request body is nested too deeply",
        ));
    }
    Ok(match value {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Integer(i) => integer(i)?,
        C::Float(f) => number(f),
        C::Text(t) => Value::String(t),
        C::Bytes(b) => Value::String(STANDARD.encode(b)),
        C::Tag(1, inner) => match *inner {
            C::Integer(i) => number(i128::from(i) as f64 / 1000.0),
            C::Float(f) => number(f / 1000.0),
            _ => return Err(serialization_error("CBOR timestamp must be a number")),
        },
        C::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| untyped(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        C::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let C::Text(key) = k else {
                    return Err(serialization_error("CBOR map keys must be text"));
                };
                map.insert(key, untyped(v, depth + 1)?);
            }
            Value::Object(map)
        }
        _ => return Err(serialization_error("Unsupported CBOR value")),
    })
}

fn expected_name(shape: &Shape) -> &'static str {
    match shape {
        Shape::Structure(_) => "a structure",
        Shape::List(_) => "a list",
        Shape::Map(_) => "a map",
        Shape::String => "a string",
        Shape::Integer => "an integer",
        Shape::Float => "a number",
        Shape::Boolean => "a boolean",
        Shape::Blob => "a blob",
        Shape::Timestamp => "a timestamp",
    }
}

fn found_json(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a structure or map",
    }
}

fn found_cbor(value: &ciborium::Value) -> &'static str {
    use ciborium::Value as C;
    match value {
        C::Integer(_) => "a number",
        C::Float(_) => "a fractional number",
        C::Bytes(_) => "a byte string",
        C::Text(_) => "a string",
        C::Bool(_) => "a boolean",
        C::Null => "null",
        C::Tag(2 | 3, _) => "a bignum",
        C::Tag(_, _) => "a tagged value",
        C::Array(_) => "a list",
        C::Map(_) => "a structure or map",
        _ => "an unsupported value",
    }
}

fn mismatch(expected: &Shape, found: &str) -> AwsError {
    serialization_error(format!(
        "Found {found} where {} was expected",
        expected_name(expected)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_model_parses_and_knows_its_operations() {
        assert_eq!(KINESIS.input("PutRecord"), Some("PutRecordInput"));
        assert!(FIREHOSE.input("PutRecordBatch").is_some());
        assert!(KINESIS_ANALYTICS.input("CreateApplication").is_some());
    }

    #[test]
    fn a_member_of_the_wrong_type_is_refused_even_when_no_handler_reads_it() {
        let input = KINESIS.input("DescribeStreamSummary").unwrap();
        for bad in [
            serde_json::json!({"StreamName": "s", "StreamId": 7}),
            serde_json::json!({"StreamName": "s", "StreamId": [1]}),
            serde_json::json!({"StreamName": "s", "StreamId": {"a": 1}}),
            serde_json::json!({"StreamName": 12}),
        ] {
            let error = KINESIS.check_json(input, &bad).unwrap_err();
            assert_eq!(error.kind, "SerializationException", "{bad}");
        }
        KINESIS
            .check_json(input, &serde_json::json!({"StreamName": "s", "Extra": 1}))
            .unwrap();
    }

    #[test]
    fn cbor_bytes_and_bignums_are_not_strings() {
        use ciborium::Value as C;
        let input = KINESIS.input("CreateStream");
        let bignum = C::Map(vec![(
            C::Text("StreamName".into()),
            C::Tag(2, Box::new(C::Bytes(vec![1, 0, 0, 0, 0, 0, 0, 0, 0]))),
        )]);
        let error = KINESIS.cbor(input, bignum, 0).unwrap_err();
        assert!(error.message.contains("bignum"), "{}", error.message);
        let bytes = C::Map(vec![(C::Text("StreamName".into()), C::Bytes(vec![1, 2]))]);
        assert!(KINESIS.cbor(input, bytes, 0).is_err());
        let put = KINESIS.input("PutRecord");
        let record = C::Map(vec![
            (C::Text("StreamName".into()), C::Text("s".into())),
            (C::Text("Data".into()), C::Bytes(vec![104, 105])),
        ]);
        let value = KINESIS.cbor(put, record, 0).unwrap();
        assert_eq!(value["Data"], "aGk=");
    }
}
