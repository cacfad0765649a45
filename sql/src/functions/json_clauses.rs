//! JSON_VALUE and JSON_QUERY with their clauses (`front/json_clauses.rs`
//! writes them as these calls), as Flink 2.3 answers them: a path without
//! `lax` is strict; in strict mode text that is not JSON, a path that
//! finds nothing and a JSON null are errors (ON ERROR), in lax mode they
//! are empty (ON EMPTY). A NULL argument, a DEFAULT's included, makes the
//! answer NULL, as Flink's generated code checks every operand first.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::json::{Step, steps};
use super::json_doc::{Json, parse};
use super::row_fn::{RowFn, integer, text};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Strict,
    Lax,
}

/// The path's mode and its JsonPath, as Flink splits them.
fn mode(path: &str) -> (Mode, &str) {
    let trimmed = path.trim_start();
    for (word, mode) in [("lax", Mode::Lax), ("strict", Mode::Strict)] {
        if let Some(head) = trimmed.get(..word.len())
            && head.eq_ignore_ascii_case(word)
        {
            let rest = &trimmed[word.len()..];
            let spec = rest.trim_start();
            if spec.len() < rest.len() && !spec.is_empty() {
                return (mode, spec);
            }
        }
    }
    (Mode::Strict, path)
}

/// Whether the path is one this reader follows as JsonPath does: `$`,
/// `.key`, `['key']` and `[index]`; wildcards, filters, slices, negative
/// indexes and deep scans are not.
pub fn path_supported(path: &str) -> bool {
    let (_, spec) = mode(path);
    spec == spec.trim() && steps(spec).is_some()
}

enum Found {
    Value(Json),
    Empty,
    Error(String),
}

pub(super) fn exists(json: &str, path: &str) -> Result<bool> {
    Ok(matches!(find(json, path)?, Found::Value(_)))
}

fn find(json: &str, path: &str) -> Result<Found> {
    let (mode, spec) = mode(path);
    let Some(steps) = steps(spec).filter(|_| spec == spec.trim()) else {
        return exec_err!("JSON path '{path}' is not supported yet");
    };
    let failed = |why: String| match mode {
        Mode::Strict => Found::Error(why),
        Mode::Lax => Found::Empty,
    };
    let Some(mut value) = parse(json) else {
        return Ok(failed(format!("not JSON: {json}")));
    };
    for step in steps {
        value = match (step, value) {
            (Step::Key(key), Json::Object(fields)) => {
                match fields.into_iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => v,
                    None => return Ok(failed(format!("no results for path {path}"))),
                }
            }
            (Step::Index(i), Json::Array(mut items)) if i < items.len() => items.swap_remove(i),
            _ => return Ok(failed(format!("no results for path {path}"))),
        };
    }
    Ok(match (value, mode) {
        (Json::Null, Mode::Strict) => Found::Error("strict mode requires a non-empty value".into()),
        (Json::Null, Mode::Lax) => Found::Empty,
        (value, _) => Found::Value(value),
    })
}

/// What JSON_VALUE's RETURNING asks; Flink 2.3 takes these four and
/// casts the Java object it found, failing when its class differs.
#[derive(Clone, Copy)]
enum Returning {
    Text,
    Int,
    Double,
    Boolean,
}

impl Returning {
    fn data_type(self) -> DataType {
        match self {
            Returning::Text => DataType::Utf8,
            Returning::Int => DataType::Int32,
            Returning::Double => DataType::Float64,
            Returning::Boolean => DataType::Boolean,
        }
    }

    fn cast(self, value: &Json) -> Result<ScalarValue> {
        Ok(match (self, value) {
            (Returning::Text, v) => ScalarValue::Utf8(v.scalar_text()),
            (Returning::Int, Json::Long(n)) if i32::try_from(*n).is_ok() => {
                ScalarValue::Int32(i32::try_from(*n).ok())
            }
            (Returning::Double, v @ Json::Decimal { .. }) => {
                ScalarValue::Float64(v.decimal_value())
            }
            (Returning::Boolean, Json::Bool(b)) => ScalarValue::Boolean(Some(*b)),
            (returning, v) => {
                return exec_err!(
                    "JSON_VALUE: cannot cast {} to {}",
                    v.text(),
                    returning.data_type()
                );
            }
        })
    }

    /// A DEFAULT as Java's `String.valueOf` or the cast leaves it.
    fn default(self, value: &ScalarValue) -> ScalarValue {
        match (self, value) {
            (Returning::Text, ScalarValue::Boolean(Some(b))) => {
                ScalarValue::Utf8(Some(b.to_string()))
            }
            (Returning::Text, v) => match text(v) {
                Some(s) => ScalarValue::Utf8(Some(s.to_string())),
                None => ScalarValue::Utf8(integer(v).map(|n| n.to_string())),
            },
            (_, v) => v.clone(),
        }
    }

    /// DEFAULT types whose value Flink's cast keeps as Runnel gives it.
    fn takes_default(self, t: &DataType) -> bool {
        match self {
            Returning::Text => super::is_text(t) || t.is_integer() || *t == DataType::Boolean,
            other => *t == other.data_type(),
        }
    }
}

/// The arguments after the path: the ON EMPTY behavior, its DEFAULT, the
/// ON ERROR behavior, its DEFAULT.
fn value_types(returning: Returning, args: &[DataType]) -> Result<DataType> {
    let [json, path, _, on_empty, _, on_error] = args else {
        return plan_err!("JSON_VALUE takes its text, its path and its ON EMPTY and ON ERROR");
    };
    if !super::is_text(json) && *json != DataType::Null {
        return plan_err!("JSON_VALUE takes a STRING, not {json}");
    }
    if !super::is_text(path) {
        return plan_err!("JSON_VALUE's path is a STRING, not {path}");
    }
    for default in [on_empty, on_error] {
        if *default != DataType::Null && !returning.takes_default(default) {
            return plan_err!(
                "JSON_VALUE ... RETURNING {} with a DEFAULT of type {default} is not supported yet",
                returning.data_type()
            );
        }
    }
    Ok(returning.data_type())
}

fn value_eval(returning: Returning, args: &[ScalarValue]) -> Result<ScalarValue> {
    let null = ScalarValue::try_from(returning.data_type())?;
    let behavior = |i: usize| text(&args[i]).unwrap_or("NULL");
    let (Some(json), Some(path)) = (text(&args[0]), text(&args[1])) else {
        return Ok(null);
    };
    for (kind, default) in [(2, 3), (4, 5)] {
        if behavior(kind) == "DEFAULT" && args[default].is_null() {
            return Ok(null);
        }
    }
    let (clause, why) = match find(json, path)? {
        Found::Value(value) if value.is_scalar() => return returning.cast(&value),
        Found::Value(value) if mode(path).0 == Mode::Lax => (2, value.text()),
        Found::Value(value) => (
            4,
            format!("strict mode requires a scalar, not {}", value.text()),
        ),
        Found::Empty => (2, String::new()),
        Found::Error(why) => (4, why),
    };
    match behavior(clause) {
        "DEFAULT" => Ok(returning.default(&args[clause + 1])),
        "ERROR" if clause == 2 => exec_err!("JSON_VALUE: an empty result is not allowed"),
        "ERROR" => exec_err!("JSON_VALUE: {why}"),
        _ => Ok(null),
    }
}

/// JSON_VALUE(s, path) and JSON_QUERY(s, path): NULL ON EMPTY and ERROR.
pub(super) fn plain_value(args: &[ScalarValue]) -> Result<ScalarValue> {
    let mut all = args.to_vec();
    all.extend([
        text_value("NULL"),
        ScalarValue::Null,
        text_value("NULL"),
        ScalarValue::Null,
    ]);
    value_eval(Returning::Text, &all)
}

pub(super) fn plain_query(args: &[ScalarValue]) -> Result<ScalarValue> {
    let mut all = args.to_vec();
    all.extend(["WITHOUT", "NULL", "NULL"].map(text_value));
    query_eval(&all)
}

fn text_value(s: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(s.to_string()))
}

fn value_udf(
    name: &'static str,
    returns: fn(&[DataType]) -> Result<DataType>,
    eval: fn(&[ScalarValue], &DataType) -> Result<ScalarValue>,
) -> ScalarUDF {
    RowFn::udf(
        name,
        Signature::any(6, Volatility::Immutable),
        returns,
        eval,
    )
}

pub fn json_value_udfs() -> Vec<ScalarUDF> {
    vec![
        value_udf(
            "flink_json_value_string",
            |a| value_types(Returning::Text, a),
            |a, _| value_eval(Returning::Text, a),
        ),
        value_udf(
            "flink_json_value_int",
            |a| value_types(Returning::Int, a),
            |a, _| value_eval(Returning::Int, a),
        ),
        value_udf(
            "flink_json_value_double",
            |a| value_types(Returning::Double, a),
            |a, _| value_eval(Returning::Double, a),
        ),
        value_udf(
            "flink_json_value_boolean",
            |a| value_types(Returning::Boolean, a),
            |a, _| value_eval(Returning::Boolean, a),
        ),
    ]
}

/// `flink_json_query(json, path, wrapper, on_empty, on_error)`; the
/// wrapper is WITHOUT, CONDITIONAL or UNCONDITIONAL, each behavior NULL,
/// ERROR, EMPTY ARRAY or EMPTY OBJECT.
pub fn json_query_udf() -> ScalarUDF {
    RowFn::udf(
        "flink_json_query",
        Signature::any(5, Volatility::Immutable),
        |args| match args {
            [json, path, ..]
                if (super::is_text(json) || *json == DataType::Null) && super::is_text(path) =>
            {
                Ok(DataType::Utf8)
            }
            _ => plan_err!("JSON_QUERY takes a STRING and a STRING path, not {args:?}"),
        },
        |args, _| query_eval(args),
    )
}

fn query_eval(args: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(json), Some(path)) = (text(&args[0]), text(&args[1])) else {
        return Ok(ScalarValue::Utf8(None));
    };
    let wrapper = text(&args[2]).unwrap_or("WITHOUT");
    let lax = mode(path).0 == Mode::Lax;
    let (clause, why) = match find(json, path)? {
        Found::Value(value) => {
            let value = match (wrapper, &value) {
                ("UNCONDITIONAL", _) | ("CONDITIONAL", Json::Object(_)) => Json::Array(vec![value]),
                ("CONDITIONAL", v) if v.is_scalar() => Json::Array(vec![value]),
                _ => value,
            };
            match (value.is_scalar(), lax) {
                (false, _) => return Ok(ScalarValue::Utf8(Some(value.text()))),
                (true, true) => (3, String::new()),
                (true, false) => (
                    4,
                    format!(
                        "strict mode requires an array or object, not {}",
                        value.text()
                    ),
                ),
            }
        }
        Found::Empty => (3, String::new()),
        Found::Error(why) => (4, why),
    };
    match text(&args[clause]).unwrap_or("NULL") {
        "EMPTY ARRAY" => Ok(ScalarValue::Utf8(Some("[]".into()))),
        "EMPTY OBJECT" => Ok(ScalarValue::Utf8(Some("{}".into()))),
        "ERROR" if clause == 3 => exec_err!("JSON_QUERY: an empty result is not allowed"),
        "ERROR" => exec_err!("JSON_QUERY: {why}"),
        _ => Ok(ScalarValue::Utf8(None)),
    }
}
