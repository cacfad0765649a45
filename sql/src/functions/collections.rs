//! Flink's collection and type functions DataFusion lacks: `ELEMENT`,
//! `SPLIT`, `SHA1`, and `TYPEOF` (typed here, answered by the rewrite,
//! which knows the argument's type and nullability).

use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::row_fn::{RowFn, string, text};

/// `ELEMENT(array)`: the one element of an array, NULL for an empty or
/// NULL array, an error for more than one, as in Flink.
pub fn element() -> ScalarUDF {
    RowFn::udf(
        "element",
        Signature::any(1, Volatility::Immutable),
        |args| match args {
            [DataType::List(item) | DataType::LargeList(item)] => Ok(item.data_type().clone()),
            _ => plan_err!("ELEMENT takes an ARRAY, not {args:?}"),
        },
        |args, returns| {
            let items = match &args[0] {
                ScalarValue::List(list) if !list.is_null(0) => list.value(0),
                ScalarValue::LargeList(list) if !list.is_null(0) => list.value(0),
                _ => return ScalarValue::try_from(returns),
            };
            match items.len() {
                0 => ScalarValue::try_from(returns),
                1 => ScalarValue::try_from_array(&items, 0),
                n => exec_err!("ELEMENT of an array of {n} elements: it must hold at most one"),
            }
        },
    )
}

/// `SPLIT(s, delimiter)`: the pieces of `s` between delimiters; an empty
/// delimiter splits every character, as Flink's does.
pub fn split() -> ScalarUDF {
    RowFn::udf(
        "split",
        Signature::one_of(
            vec![TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8])],
            Volatility::Immutable,
        ),
        |_| {
            Ok(DataType::List(Arc::new(Field::new_list_field(
                DataType::Utf8,
                true,
            ))))
        },
        |args, returns| {
            let (Some(s), Some(delimiter)) = (text(&args[0]), text(&args[1])) else {
                return ScalarValue::try_from(returns);
            };
            let pieces: Vec<ScalarValue> = match delimiter.is_empty() {
                true => s.chars().map(|c| string(Some(c.to_string()))).collect(),
                false => s
                    .split(delimiter)
                    .map(|p| string(Some(p.to_string())))
                    .collect(),
            };
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                &pieces,
                &DataType::Utf8,
            )))
        },
    )
}

/// `SHA1(s)`: in lower-case hexadecimal.
pub fn sha1() -> ScalarUDF {
    RowFn::udf(
        "sha1",
        Signature::one_of(
            vec![TypeSignature::Exact(vec![DataType::Utf8])],
            Volatility::Immutable,
        ),
        |_| Ok(DataType::Utf8),
        |args, _| {
            use sha1::Digest;
            Ok(string(text(&args[0]).map(|s| {
                sha1::Sha1::digest(s.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            })))
        },
    )
}

/// `TYPEOF(x [, force_serializable])`: only so that the name resolves;
/// the rewrite replaces the call by the type's name.
pub fn type_of() -> ScalarUDF {
    RowFn::udf(
        "typeof",
        Signature::variadic_any(Volatility::Immutable),
        |_| Ok(DataType::Utf8),
        |_, _| exec_err!("TYPEOF is answered when the query is planned"),
    )
}
