//! Flink's collection and type functions DataFusion lacks or answers
//! otherwise: `ELEMENT`, `SPLIT`, `SHA1` and the SHA-2 digests, and `TYPEOF` (typed here, answered by the rewrite,
//! which knows the argument's type and nullability); `array[i]` and
//! `ARRAY_CONTAINS` with a NULL as Flink answers them (rewritten calls).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, ScalarUDF, Signature, TypeSignature, Volatility, lit, when};

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

/// `ARRAY_SLICE(array, start [, end])`: the elements from `start` to `end`
/// inclusive, 1-based, a negative offset counted from the end; a start
/// before the first element is the first, an end past the last the last,
/// an end of 0 the first; empty when the end comes before the start; NULL
/// when an argument is, as Flink's `ArraySliceFunction` answers.
pub fn array_slice() -> ScalarUDF {
    RowFn::udf(
        "array_slice",
        Signature::variadic_any(Volatility::Immutable),
        |args| match args {
            [list @ DataType::List(_), rest @ ..]
                if (1..=2).contains(&rest.len())
                    && rest.iter().all(|t| t.is_integer() || t.is_null()) =>
            {
                Ok(list.clone())
            }
            _ => {
                plan_err!("ARRAY_SLICE takes an ARRAY and one or two integer offsets, not {args:?}")
            }
        },
        |args, returns| {
            let ScalarValue::List(list) = &args[0] else {
                return ScalarValue::try_from(returns);
            };
            if list.is_null(0) {
                return ScalarValue::try_from(returns);
            }
            let items = list.value(0);
            let size = items.len() as i64;
            let offsets: Option<Vec<i64>> = args[1..].iter().map(super::row_fn::integer).collect();
            let Some(offsets) = offsets else {
                return ScalarValue::try_from(returns);
            };
            let (start, end) = (offsets[0], offsets.get(1).copied().unwrap_or(size));
            if size == 0 {
                return Ok(args[0].clone());
            }
            let start = (start + if start < 0 { size + 1 } else { 0 }).max(1);
            let end = end + if end < 0 { size + 1 } else { 0 };
            let end = if end == 0 { 1 } else { end.min(size) };
            let length = if end < start { 0 } else { end - start + 1 };
            let sliced = items.slice((start - 1).clamp(0, size) as usize, length as usize);
            let DataType::List(field) = returns else {
                return exec_err!("ARRAY_SLICE returns an ARRAY, not {returns}");
            };
            Ok(ScalarValue::List(Arc::new(
                datafusion::arrow::array::ListArray::new(
                    field.clone(),
                    datafusion::arrow::buffer::OffsetBuffer::from_lengths([sliced.len()]),
                    sliced,
                    None,
                ),
            )))
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
        |_| Ok(string_list_type()),
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
            Ok(string_list(&pieces))
        },
    )
}

/// `SHA1(s)`, `SHA224(s)`, ... `SHA512(s)`: the digest of the text's
/// UTF-8 in lower-case hexadecimal, a STRING as in Flink (DataFusion's
/// SHA-2 functions give BYTES).
pub fn sha1() -> ScalarUDF {
    hex_digest("sha1", hex_row::<sha1::Sha1>)
}

pub fn sha224() -> ScalarUDF {
    hex_digest("sha224", hex_row::<sha2::Sha224>)
}

pub fn sha256() -> ScalarUDF {
    hex_digest("sha256", hex_row::<sha2::Sha256>)
}

pub fn sha384() -> ScalarUDF {
    hex_digest("sha384", hex_row::<sha2::Sha384>)
}

pub fn sha512() -> ScalarUDF {
    hex_digest("sha512", hex_row::<sha2::Sha512>)
}

fn hex_row<D: sha2::Digest>(
    args: &[ScalarValue],
    _: &DataType,
) -> datafusion::common::Result<ScalarValue> {
    Ok(string(
        text(&args[0]).map(|s| hex(&D::digest(s.as_bytes()))),
    ))
}

fn hex_digest(name: &'static str, eval: super::row_fn::Eval) -> ScalarUDF {
    RowFn::udf(
        name,
        Signature::one_of(
            vec![TypeSignature::Exact(vec![DataType::Utf8])],
            Volatility::Immutable,
        ),
        |_| Ok(DataType::Utf8),
        eval,
    )
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// `REGEXP_EXTRACT_ALL(s, regex [, group])`: the group (1 by default; 0 is
/// the whole match) of every match, as an array; NULL for a NULL argument
/// or a group the expression does not have, as in Flink.
pub fn regexp_extract_all() -> ScalarUDF {
    RowFn::udf(
        "regexp_extract_all",
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8, DataType::Int64]),
            ],
            Volatility::Immutable,
        ),
        |_| Ok(string_list_type()),
        |args, returns| {
            let group = match args.get(2) {
                None => Some(1),
                Some(value) => super::row_fn::integer(value),
            };
            let (Some(s), Some(pattern), Some(group)) = (text(&args[0]), text(&args[1]), group)
            else {
                return ScalarValue::try_from(returns);
            };
            let regex = match regex::Regex::new(pattern) {
                Ok(regex) => regex,
                Err(error) => {
                    return exec_err!(
                        "REGEXP_EXTRACT_ALL: invalid regular expression '{pattern}': {error}"
                    );
                }
            };
            let Ok(group) = usize::try_from(group) else {
                return exec_err!("REGEXP_EXTRACT_ALL: group {group} is negative");
            };
            // A group the expression does not have gives NULL, as in Flink.
            if group >= regex.captures_len() {
                return ScalarValue::try_from(returns);
            }
            let found: Vec<ScalarValue> = regex
                .captures_iter(s)
                .map(|c| string(c.get(group).map(|m| m.as_str().to_string())))
                .collect();
            Ok(string_list(&found))
        },
    )
}

/// `STR_TO_MAP(s [, pair delimiter, key-value delimiter])`: `','` and `'='`
/// by default, both regular expressions in Flink; a pair without the
/// key-value delimiter maps its key to NULL.
pub fn str_to_map() -> ScalarUDF {
    RowFn::udf(
        "str_to_map",
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8, DataType::Utf8]),
            ],
            Volatility::Immutable,
        ),
        |_| Ok(string_map_type()),
        |args, returns| {
            let (pairs, key_value) = match args.len() {
                3 => (text(&args[1]), text(&args[2])),
                _ => (Some(","), Some("=")),
            };
            let (Some(s), Some(pairs), Some(key_value)) = (text(&args[0]), pairs, key_value) else {
                return ScalarValue::try_from(returns);
            };
            let (Ok(pairs), Ok(key_value)) =
                (regex::Regex::new(pairs), regex::Regex::new(key_value))
            else {
                return exec_err!("STR_TO_MAP: a delimiter is not a valid regular expression");
            };
            let mut keys = Vec::new();
            let mut values = Vec::new();
            for pair in pairs.split(s) {
                let mut parts = key_value.splitn(pair, 2);
                keys.push(parts.next().unwrap_or_default().to_string());
                values.push(parts.next().map(str::to_string));
            }
            string_map(keys, values)
        },
    )
}

fn string_map_type() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(
                vec![
                    Field::new("keys", DataType::Utf8, false),
                    Field::new("values", DataType::Utf8, true),
                ]
                .into(),
            ),
            false,
        )),
        false,
    )
}

fn string_map(
    keys: Vec<String>,
    values: Vec<Option<String>>,
) -> datafusion::common::Result<ScalarValue> {
    use datafusion::arrow::array::{MapBuilder, StringBuilder};
    let mut builder = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for (key, value) in keys.iter().zip(values) {
        builder.keys().append_value(key);
        builder.values().append_option(value);
    }
    builder.append(true)?;
    let map = builder.finish();
    ScalarValue::try_from_array(&map, 0)
}

fn string_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

fn string_list(items: &[ScalarValue]) -> ScalarValue {
    ScalarValue::List(ScalarValue::new_list_nullable(items, &DataType::Utf8))
}

/// `array[index]` as Flink answers it: a constant index below 1 is refused
/// at submit, as Flink's validation refuses it; any other index outside
/// the array is NULL (DataFusion counts a negative one from the end). An
/// `ARRAY[...]` constructor indexed past its end, or by a non-constant, is
/// refused: Flink 2.3 answers -1 there.
pub fn flink_element(func: Arc<ScalarUDF>, args: Vec<Expr>) -> Result<Transformed<Expr>> {
    let Ok([array, index]) = <[Expr; 2]>::try_from(args) else {
        return plan_err!("an array element access takes an array and an index");
    };
    let constant = super::math::constant_value(&index)
        .and_then(|value| value.cast_to(&DataType::Int64).ok())
        .and_then(|value| match value {
            ScalarValue::Int64(n) => n,
            _ => None,
        });
    if let Some(n) = constant.filter(|n| *n < 1) {
        return plan_err!("Array element access needs an index starting at 1 but was {n}.");
    }
    if let Expr::ScalarFunction(constructor) = &array
        && constructor.func.name() == "make_array"
    {
        let length = constructor.args.len() as i64;
        if constant.is_none_or(|n| n > length) {
            return plan_err!(
                "an ARRAY[...] of {length} elements indexed by {index} is refused: Flink 2.3 \
                 answers -1 for an index past such an array's end"
            );
        }
    }
    let element = Expr::ScalarFunction(ScalarFunction::new_udf(func, vec![array, index.clone()]));
    Ok(Transformed::yes(
        when(index.gt_eq(lit(1i64)), element).otherwise(lit(ScalarValue::Null))?,
    ))
}

/// `ARRAY_CONTAINS(array, needle)` with a NULL needle is whether the array
/// holds a NULL, as in Flink (DataFusion answers NULL).
pub fn flink_contains(func: Arc<ScalarUDF>, args: Vec<Expr>) -> Result<Transformed<Expr>> {
    let Ok([array, needle]) = <[Expr; 2]>::try_from(args) else {
        return plan_err!("ARRAY_CONTAINS takes an array and a value");
    };
    let contains = Expr::ScalarFunction(ScalarFunction::new_udf(
        func,
        vec![array.clone(), needle.clone()],
    ));
    Ok(Transformed::yes(
        when(needle.is_null(), has_null().call(vec![array])).otherwise(contains)?,
    ))
}

fn has_null() -> ScalarUDF {
    RowFn::udf(
        "flink_array_has_null",
        Signature::any(1, Volatility::Immutable),
        |_| Ok(DataType::Boolean),
        |args, _| {
            let holds_null = |values: ArrayRef| values.null_count() > 0;
            Ok(ScalarValue::Boolean(match &args[0] {
                ScalarValue::List(list) => list.is_valid(0).then(|| holds_null(list.value(0))),
                ScalarValue::LargeList(list) => list.is_valid(0).then(|| holds_null(list.value(0))),
                ScalarValue::FixedSizeList(list) => {
                    list.is_valid(0).then(|| holds_null(list.value(0)))
                }
                ScalarValue::Null => None,
                other => return exec_err!("ARRAY_CONTAINS of {}", other.data_type()),
            }))
        },
    )
}
