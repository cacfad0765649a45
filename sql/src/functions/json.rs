//! Flink's JSON functions in their plain forms: `JSON_VALUE(s, path)`,
//! `JSON_QUERY(s, path)`, `JSON_EXISTS(s, path)` (answered by
//! `json_clauses.rs` with Flink's defaults, `NULL ON EMPTY`, `NULL ON
//! ERROR`, `FALSE ON ERROR`), `JSON_STRING(v)`, `IS JSON` and the JSON
//! constructors. Paths: `$`, `.key`, `['key']`, `[index]`. With RETURNING, ON EMPTY or ON ERROR, or a JSON_QUERY wrapper,
//! `json_clauses.rs` answers instead.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{DataFusionError, ScalarValue, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};
use serde_json::Value;

use super::row_fn::{RowFn, exact, string, text};

pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// A path's steps, or `None` for a path this reader does not take.
pub(super) fn steps(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let key = &after[..end];
            if key.is_empty() || key == "*" {
                return None;
            }
            steps.push(Step::Key(key.trim_matches('"').to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inside = after[..end].trim();
            if let Some(key) = inside
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .or_else(|| inside.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
            {
                steps.push(Step::Key(key.to_string()));
            } else {
                steps.push(Step::Index(inside.parse().ok()?));
            }
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

fn args_text(args: &[ScalarValue]) -> Option<(&str, &str)> {
    Some((text(&args[0])?, text(&args[1])?))
}

pub fn json_value() -> ScalarUDF {
    RowFn::udf(
        "json_value",
        exact(vec![vec![DataType::Utf8, DataType::Utf8]]),
        |_| Ok(DataType::Utf8),
        |args, _| super::json_clauses::plain_value(args),
    )
}

pub fn json_query() -> ScalarUDF {
    RowFn::udf(
        "json_query",
        exact(vec![vec![DataType::Utf8, DataType::Utf8]]),
        |_| Ok(DataType::Utf8),
        |args, _| super::json_clauses::plain_query(args),
    )
}

/// TRUE when the path finds a value; a JSON null, as in Flink's strict
/// and lax modes alike, is not one.
pub fn json_exists() -> ScalarUDF {
    RowFn::udf(
        "json_exists",
        exact(vec![vec![DataType::Utf8, DataType::Utf8]]),
        |_| Ok(DataType::Boolean),
        |args, _| {
            Ok(ScalarValue::Boolean(match args_text(args) {
                Some((json, path)) => Some(super::json_clauses::exists(json, path)?),
                None => None,
            }))
        },
    )
}

/// `JSON_STRING(v)`: the value as JSON text; NULL for NULL.
pub fn json_string() -> ScalarUDF {
    RowFn::udf(
        "json_string",
        Signature::any(1, Volatility::Immutable),
        |args| match args.first() {
            Some(t) if t.is_numeric() || super::is_text(t) || *t == DataType::Boolean => {
                Ok(DataType::Utf8)
            }
            _ => plan_err!("JSON_STRING here takes a number, a string or a BOOLEAN, not {args:?}"),
        },
        |args, _| {
            let value = &args[0];
            if value.is_null() {
                return Ok(string(None));
            }
            let json = match value {
                ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
                ScalarValue::Float64(Some(v)) => {
                    serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number)
                }
                other => match text(other) {
                    Some(s) => Value::String(s.to_string()),
                    None => return Ok(string(Some(other.to_string()))),
                },
            };
            Ok(string(Some(json.to_string())))
        },
    )
}

/// `x IS JSON [kind]` (`front/is_json.rs` writes it as this call): whether
/// the text parses as JSON of the kind (VALUE: any; SCALAR: neither object
/// nor array); FALSE for NULL, as in Flink.
pub fn is_json() -> ScalarUDF {
    RowFn::udf(
        "is_json",
        exact(vec![vec![DataType::Utf8, DataType::Utf8]]),
        |_| Ok(DataType::Boolean),
        |args, _| {
            let (Some(json), Some(kind)) = (text(&args[0]), text(&args[1])) else {
                return Ok(ScalarValue::Boolean(Some(false)));
            };
            let parsed = serde_json::from_str::<Value>(json).ok();
            let matches = match (parsed, kind) {
                (None, _) => false,
                (Some(_), "VALUE") => true,
                (Some(value), "SCALAR") => !value.is_object() && !value.is_array(),
                (Some(value), "ARRAY") => value.is_array(),
                (Some(value), "OBJECT") => value.is_object(),
                (Some(_), other) => {
                    return datafusion::common::exec_err!("IS JSON {other}: not a JSON kind");
                }
            };
            Ok(ScalarValue::Boolean(Some(matches)))
        },
    )
}

/// The one field of `json_raw`'s struct.
const RAW_FIELD: &str = "raw_json";

fn raw_fields() -> Fields {
    vec![Field::new(RAW_FIELD, DataType::Utf8, true)].into()
}

fn raw_type() -> DataType {
    DataType::Struct(raw_fields())
}

/// A constructor's result as another's value (`front/json_construct.rs`
/// writes it): a struct of the text, so that the outer call can tell JSON
/// to write as it is from a string to quote.
pub fn json_raw() -> ScalarUDF {
    RowFn::udf(
        "json_raw",
        exact(vec![vec![DataType::Utf8]]),
        |_| Ok(raw_type()),
        |args, _| {
            let text = StringArray::from(vec![text(&args[0]).map(str::to_string)]);
            Ok(ScalarValue::Struct(Arc::new(StructArray::new(
                raw_fields(),
                vec![Arc::new(text) as ArrayRef],
                None,
            ))))
        },
    )
}

/// The text `json_raw` holds, if `value` is one of its structs.
fn raw_text(value: &ScalarValue) -> Option<Option<String>> {
    let ScalarValue::Struct(array) = value else {
        return None;
    };
    if array.num_columns() != 1 || array.fields()[0].name() != RAW_FIELD {
        return None;
    }
    let column = array.column(0).as_string_opt::<i32>()?;
    Some((!column.is_null(0)).then(|| column.value(0).to_string()))
}

/// Separates `json_objectagg_item`s in their `string_agg`: JSON text never
/// holds it raw (control characters are escaped in strings).
pub const OBJECTAGG_SEPARATOR: char = '\u{1e}';

/// `JSON_ARRAYAGG(v [NULL | ABSENT ON NULL])` is written (by
/// `front/json_construct.rs`) as `json_arrayagg_close(string_agg(
/// json_arrayagg_item(on_null, v), ','))`: the items are gathered in arrival
/// order, as Flink's list view keeps them, and retracted as LISTAGG's are.
/// An item is the value as JSON text, NULL when left out.
pub fn json_arrayagg_item() -> ScalarUDF {
    RowFn::udf(
        "json_arrayagg_item",
        Signature::any(2, Volatility::Immutable),
        |args| constructor_types("JSON_ARRAYAGG", args, args.get(1..).unwrap_or_default()),
        |args, _| {
            let absent = text(&args[0]) == Some("ABSENT");
            if absent && args[1].is_null() {
                return Ok(string(None));
            }
            Ok(string(json_text(&args[1])))
        },
    )
}

/// The array of the gathered items; `[]` when there were none.
pub fn json_arrayagg_close() -> ScalarUDF {
    RowFn::udf(
        "json_arrayagg_close",
        Signature::any(1, Volatility::Immutable),
        |_| Ok(DataType::Utf8),
        |args, _| {
            Ok(string(Some(format!(
                "[{}]",
                text(&args[0]).unwrap_or_default()
            ))))
        },
    )
}

/// `JSON_OBJECTAGG([KEY] k VALUE v [NULL | ABSENT ON NULL])`, written as
/// `json_objectagg_close(string_agg(json_objectagg_item(on_null, k, v),
/// OBJECTAGG_SEPARATOR))`. An item is `"key":value`; a NULL key fails the
/// job, as Flink's map view refuses one.
pub fn json_objectagg_item() -> ScalarUDF {
    RowFn::udf(
        "json_objectagg_item",
        Signature::any(3, Volatility::Immutable),
        |args| {
            if !args
                .get(1)
                .is_some_and(|t| super::is_text(t) || *t == DataType::Null)
            {
                return plan_err!("JSON_OBJECTAGG takes a string key, not {:?}", args.get(1));
            }
            constructor_types("JSON_OBJECTAGG", args, args.get(2..).unwrap_or_default())
        },
        |args, _| {
            let Some(key) = text(&args[1]) else {
                return datafusion::common::exec_err!(
                    "JSON_OBJECTAGG: a key is NULL (Flink's map views take no NULL keys)"
                );
            };
            if text(&args[0]) == Some("ABSENT") && args[2].is_null() {
                return Ok(string(None));
            }
            let key =
                serde_json::to_string(key).map_err(|e| DataFusionError::External(e.into()))?;
            let value = json_text(&args[2]).unwrap_or_else(|| "null".into());
            Ok(string(Some(format!("{key}:{value}"))))
        },
    )
}

/// The object of the gathered items, keys sorted as Flink writes them; a
/// key given twice fails the job, as in Flink.
pub fn json_objectagg_close() -> ScalarUDF {
    RowFn::udf(
        "json_objectagg_close",
        Signature::any(1, Volatility::Immutable),
        |_| Ok(DataType::Utf8),
        |args, _| {
            let items = text(&args[0]).unwrap_or_default();
            let mut fields = Vec::new();
            for item in items.split(OBJECTAGG_SEPARATOR).filter(|i| !i.is_empty()) {
                fields.push(split_item(item)?);
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(pair) = fields.windows(2).find(|pair| pair[0].0 == pair[1].0) {
                return datafusion::common::exec_err!(
                    "Key '{}' is already present. Duplicate keys are not allowed in JSON_OBJECTAGG",
                    pair[0].0
                );
            }
            let fields: Vec<&str> = fields.iter().map(|(_, item)| *item).collect();
            Ok(string(Some(format!("{{{}}}", fields.join(",")))))
        },
    )
}

/// An item's key (decoded, to sort by) and the item itself.
fn split_item(item: &str) -> datafusion::common::Result<(String, &str)> {
    let mut keys = serde_json::Deserializer::from_str(item).into_iter::<String>();
    match keys.next() {
        Some(Ok(key)) if item[keys.byte_offset()..].starts_with(':') => Ok((key, item)),
        _ => datafusion::common::exec_err!("JSON_OBJECTAGG: an item is not \"key\":value"),
    }
}

/// A value as JSON text, for the types whose text Runnel gives as Flink's
/// JSON_OBJECT and JSON_ARRAY do (a DATE Flink refuses). A DECIMAL is Java's `BigDecimal` text.
/// A DOUBLE is the decimal of its Java text (`2500000.0`, `0.0000025`,
/// `1.5E+10`), a FLOAT the same of its widening, NaN and the infinities
/// strings, as Flink writes them.
fn json_text(value: &ScalarValue) -> Option<String> {
    use super::row_fn::integer;
    if let Some(raw) = raw_text(value) {
        return Some(raw.unwrap_or_else(|| "null".into()));
    }
    if value.is_null() {
        return Some("null".into());
    }
    let float = match value {
        ScalarValue::Float64(Some(v)) => Some(*v),
        ScalarValue::Float32(Some(v)) => Some(f64::from(*v)),
        _ => None,
    };
    if let ScalarValue::Decimal128(Some(unscaled), _, scale) = value {
        return Some(crate::java_format::java_decimal(*unscaled, *scale));
    }
    if let Some(text) = timestamp_text(value) {
        return Some(format!("\"{text}\""));
    }
    if let Some(v) = float {
        return Some(
            crate::java_format::java_big_decimal_of_double(v)
                .unwrap_or_else(|| format!("\"{}\"", crate::java_format::java_double(v))),
        );
    }
    if let Some(s) = text(value) {
        return serde_json::to_string(s).ok();
    }
    if let ScalarValue::Boolean(Some(b)) = value {
        return Some(b.to_string());
    }
    integer(value).map(|n| n.to_string())
}

/// A TIMESTAMP as Flink's JSON functions write it, Java's ISO local
/// date-time: seconds always, a fraction without trailing zeros
/// (`2020-04-15T08:00:00`, `2020-04-15T08:00:07.12`); a TIMESTAMP_LTZ
/// the same in UTC with a `Z`, as an ISO instant.
fn timestamp_text(value: &ScalarValue) -> Option<String> {
    let (nanos, zone): (i128, &Option<Arc<str>>) = match value {
        ScalarValue::TimestampSecond(Some(v), zone) => (i128::from(*v) * 1_000_000_000, zone),
        ScalarValue::TimestampMillisecond(Some(v), zone) => (i128::from(*v) * 1_000_000, zone),
        ScalarValue::TimestampMicrosecond(Some(v), zone) => (i128::from(*v) * 1_000, zone),
        ScalarValue::TimestampNanosecond(Some(v), zone) => (i128::from(*v), zone),
        _ => return None,
    };
    let seconds = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let fraction = nanos.rem_euclid(1_000_000_000) as u32;
    let time = chrono::DateTime::from_timestamp(seconds, fraction)?.naive_utc();
    let mut text = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    if fraction > 0 {
        let digits = format!("{fraction:09}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    if zone.is_some() {
        text.push('Z');
    }
    Some(text)
}

fn constructor_types(
    name: &str,
    args: &[DataType],
    values: &[DataType],
) -> datafusion::common::Result<DataType> {
    if !matches!(args.first(), Some(t) if super::is_text(t)) {
        return plan_err!("{name} takes its NULL treatment first");
    }
    match values.iter().find(|t| {
        !(t.is_integer()
            || super::is_text(t)
            || matches!(
                t,
                DataType::Boolean
                    | DataType::Null
                    | DataType::Float64
                    | DataType::Float32
                    | DataType::Decimal128(..)
                    | DataType::Timestamp(..)
            )
            || **t == raw_type())
    }) {
        Some(other) => plan_err!(
            "{name} of a {other} value is not supported yet (numbers, TIMESTAMPs, strings and BOOLEANs are)"
        ),
        None => Ok(DataType::Utf8),
    }
}

/// `JSON_OBJECT(k VALUE v, ...)` (as `front/json_construct.rs` writes it:
/// the NULL treatment, then keys and values): compact JSON, keys sorted.
pub fn json_object() -> ScalarUDF {
    RowFn::udf(
        "json_object",
        Signature::variadic_any(Volatility::Immutable),
        |args| {
            let values: Vec<DataType> = args.iter().skip(2).step_by(2).cloned().collect();
            if args.len() % 2 == 0 {
                return plan_err!("JSON_OBJECT takes keys and values in pairs");
            }
            constructor_types("JSON_OBJECT", args, &values)
        },
        |args, _| {
            let absent = text(&args[0]) == Some("ABSENT");
            let mut fields = Vec::new();
            for pair in args[1..].chunks(2) {
                let [key, value] = pair else { continue };
                let Some(key) = text(key) else {
                    return datafusion::common::exec_err!("JSON_OBJECT: a key is NULL");
                };
                if absent && value.is_null() {
                    continue;
                }
                fields.push((key, json_text(value).unwrap_or_else(|| "null".into())));
            }
            // Flink writes the keys sorted.
            fields.sort_by(|a, b| a.0.cmp(b.0));
            let fields: Vec<String> = fields
                .iter()
                .map(|(key, value)| {
                    let key = serde_json::to_string(key).unwrap_or_else(|_| format!("\"{key}\""));
                    format!("{key}:{value}")
                })
                .collect();
            Ok(string(Some(format!("{{{}}}", fields.join(",")))))
        },
    )
}

/// `JSON_ARRAY(v, ...)`: compact JSON; NULLs left out unless NULL ON NULL.
pub fn json_array() -> ScalarUDF {
    RowFn::udf(
        "json_array",
        Signature::variadic_any(Volatility::Immutable),
        |args| constructor_types("JSON_ARRAY", args, args.get(1..).unwrap_or_default()),
        |args, _| {
            let absent = text(&args[0]) == Some("ABSENT");
            let items: Vec<String> = args[1..]
                .iter()
                .filter(|v| !(absent && v.is_null()))
                .map(|v| json_text(v).unwrap_or_else(|| "null".into()))
                .collect();
            Ok(string(Some(format!("[{}]", items.join(",")))))
        },
    )
}
