//! Flink's string functions where DataFusion's differ: `SUBSTRING` counts a
//! start of 0 as 1 and a negative start from the end, `CONCAT` is NULL when
//! any argument is, a BOOLEAN as text is `TRUE`/`FALSE`, `LPAD`, `RPAD` and
//! `OVERLAY` count UTF-16 code units, `INITCAP` and `ASCII` are Calcite's.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, Signature, TypeSignature, Volatility,
};

use super::row_fn::{ColumnFn, RowFn, exact, integer, string, text};

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

fn text_result(_args: &[DataType]) -> Result<DataType> {
    Ok(DataType::Utf8)
}

/// `SUBSTRING(s FROM start [FOR length])`, `SUBSTR(s, start [, length])`,
/// over the columns at once.
pub fn substring() -> ScalarUDF {
    ColumnFn::udf(
        "substr",
        exact(vec![
            vec![DataType::Utf8, DataType::Int64],
            vec![DataType::Utf8, DataType::Int64, DataType::Int64],
        ]),
        text_result,
        substring_columns,
    )
}

fn substring_columns(args: ScalarFunctionArgs) -> Result<ColumnarValue> {
    let rows = args.number_rows;
    let (Some(texts), Some(starts)) = (args.args.first(), args.args.get(1)) else {
        return exec_err!("SUBSTRING takes a string and a start");
    };
    let texts = TextArg::of(texts, rows)?;
    let starts = IntArg::of(starts, rows)?;
    let lengths = args.args.get(2).map(|a| IntArg::of(a, rows)).transpose()?;
    let mut out = StringBuilder::with_capacity(rows, 0);
    for row in 0..rows {
        let cut = match (texts.at(row), starts.at(row), &lengths) {
            (Some(value), Some(start), None) => substring_of(value, start, None),
            (Some(value), Some(start), Some(lengths)) => lengths
                .at(row)
                .and_then(|length| substring_of(value, start, Some(length))),
            _ => None,
        };
        out.append_option(cut);
    }
    Ok(ColumnarValue::Array(Arc::new(out.finish())))
}

/// Characters from `start` (1-based; 0 is 1; negative counts from the
/// end) for `length` characters: Flink's `substringSQL`.
fn substring_of(value: &str, start: i64, length: Option<i64>) -> Option<&str> {
    if length.is_some_and(|l| l < 0) {
        return None;
    }
    let chars = value.chars().count() as i64;
    let from = match start {
        s if s > 0 => s - 1,
        s if s < 0 => chars + s,
        _ => 0,
    };
    let to = length.map_or(chars, |l| from.saturating_add(l)).min(chars);
    // A start before the first character is empty, not cut to the start.
    if from < 0 || from >= to {
        return Some("");
    }
    let byte_at = |char_index: i64| {
        value
            .char_indices()
            .nth(char_index as usize)
            .map_or(value.len(), |(at, _)| at)
    };
    Some(&value[byte_at(from)..byte_at(to)])
}

/// `CONCAT(s1, s2, ...)`: NULL when any argument is; over the columns at
/// once.
pub fn concat() -> ScalarUDF {
    ColumnFn::udf(
        "concat",
        Signature::variadic_any(Volatility::Immutable),
        |args| {
            if let Some(other) = args.iter().find(|t| !is_text(t)) {
                return plan_err!("CONCAT takes strings, not {other}");
            }
            Ok(DataType::Utf8)
        },
        concat_columns,
    )
}

fn concat_columns(args: ScalarFunctionArgs) -> Result<ColumnarValue> {
    let rows = args.number_rows;
    let parts = args
        .args
        .iter()
        .map(|a| TextArg::of(a, rows))
        .collect::<Result<Vec<_>>>()?;
    let mut out = StringBuilder::with_capacity(rows, 0);
    let mut joined = String::new();
    'rows: for row in 0..rows {
        joined.clear();
        for part in &parts {
            match part.at(row) {
                Some(text) => joined.push_str(text),
                None => {
                    out.append_null();
                    continue 'rows;
                }
            }
        }
        out.append_value(&joined);
    }
    Ok(ColumnarValue::Array(Arc::new(out.finish())))
}

/// A text argument as each row reads it: one value for every row, or a
/// column (any string type, as UTF-8).
enum TextArg {
    One(Option<String>),
    Column(StringArray),
}

impl TextArg {
    fn of(arg: &ColumnarValue, rows: usize) -> Result<Self> {
        Ok(match arg {
            ColumnarValue::Scalar(value) => TextArg::One(text(value).map(str::to_string)),
            ColumnarValue::Array(_) => {
                let array = arg.to_array(rows)?;
                let array = datafusion::arrow::compute::cast(&array, &DataType::Utf8)?;
                TextArg::Column(array.as_string::<i32>().clone())
            }
        })
    }

    fn at(&self, row: usize) -> Option<&str> {
        match self {
            TextArg::One(value) => value.as_deref(),
            TextArg::Column(array) => (!array.is_null(row)).then(|| array.value(row)),
        }
    }
}

/// An integer argument as each row reads it.
enum IntArg {
    One(Option<i64>),
    Column(Int64Array),
}

impl IntArg {
    fn of(arg: &ColumnarValue, rows: usize) -> Result<Self> {
        Ok(match arg {
            ColumnarValue::Scalar(value) => IntArg::One(integer(value)),
            ColumnarValue::Array(_) => {
                let array = arg.to_array(rows)?;
                let array = datafusion::arrow::compute::cast(&array, &DataType::Int64)?;
                IntArg::Column(array.as_primitive::<Int64Type>().clone())
            }
        })
    }

    fn at(&self, row: usize) -> Option<i64> {
        match self {
            IntArg::One(value) => *value,
            IntArg::Column(array) => (!array.is_null(row)).then(|| array.value(row)),
        }
    }
}

/// A BOOLEAN cast to a string: Flink writes `TRUE` and `FALSE`.
pub fn boolean_text() -> ScalarUDF {
    RowFn::udf(
        "flink_boolean_text",
        Signature::one_of(
            vec![TypeSignature::Exact(vec![DataType::Boolean])],
            Volatility::Immutable,
        ),
        text_result,
        |args, _| {
            Ok(string(match &args[0] {
                ScalarValue::Boolean(Some(true)) => Some("TRUE".to_string()),
                ScalarValue::Boolean(Some(false)) => Some("FALSE".to_string()),
                _ => None,
            }))
        },
    )
}

/// `REPLACE(s, from, to)`: an empty `from` puts `to` between every two
/// characters and at both ends, as Java's `String.replace` does (and
/// Rust's). A column with constant `from` and `to`, the usual call, is
/// replaced in one pass over the column rather than row by row.
pub fn replace() -> ScalarUDF {
    ColumnFn::udf(
        "replace",
        exact(vec![vec![DataType::Utf8, DataType::Utf8, DataType::Utf8]]),
        text_result,
        replace_columns,
    )
}

fn replace_columns(args: ScalarFunctionArgs) -> Result<ColumnarValue> {
    let rows = args.number_rows;
    let [subject, from, to] = args.args.as_slice() else {
        return exec_err!("REPLACE takes three arguments");
    };
    let (subject, from, to) = (
        TextArg::of(subject, rows)?,
        TextArg::of(from, rows)?,
        TextArg::of(to, rows)?,
    );
    let mut out = StringBuilder::with_capacity(rows, 0);
    for row in 0..rows {
        match (subject.at(row), from.at(row), to.at(row)) {
            // A value without `from` is itself, not a copy.
            (Some(value), Some(from), Some(to)) if from.is_empty() || value.contains(from) => {
                out.append_value(value.replace(from, to));
            }
            (Some(value), Some(_), Some(_)) => out.append_value(value),
            _ => out.append_null(),
        }
    }
    Ok(ColumnarValue::Array(Arc::new(out.finish())))
}

fn pad<const LEFT: bool>(name: &'static str) -> ScalarUDF {
    RowFn::udf(
        name,
        exact(vec![vec![DataType::Utf8, DataType::Int64, DataType::Utf8]]),
        text_result,
        pad_row::<LEFT>,
    )
}

fn pad_row<const LEFT: bool>(args: &[ScalarValue], _: &DataType) -> Result<ScalarValue> {
    let (Some(s), Some(length), Some(filler)) = (text(&args[0]), integer(&args[1]), text(&args[2]))
    else {
        return Ok(string(None));
    };
    let Ok(length) = usize::try_from(length) else {
        return Ok(string(None));
    };
    // An empty filler is NULL even when none is needed, as in Flink.
    if filler.is_empty() {
        return Ok(string(None));
    }
    let s = utf16(s);
    if length <= s.len() {
        return Ok(string(Some(from_utf16(&s[..length]))));
    }
    let fill: Vec<u16> = filler
        .encode_utf16()
        .cycle()
        .take(length - s.len())
        .collect();
    let (first, second) = if LEFT { (&fill, &s) } else { (&s, &fill) };
    Ok(string(Some(from_utf16(
        &[first.as_slice(), second.as_slice()].concat(),
    ))))
}

/// Text as a Java `String` holds it, UTF-16 code units: Flink's LPAD,
/// RPAD and OVERLAY count those (its SUBSTRING, CHAR_LENGTH and the like
/// count code points), so a character outside the BMP counts twice.
fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// Code units back to text as Flink writes a Java string out: a
/// surrogate cut from its pair becomes `?`, as Java's UTF-8 encoder
/// writes it.
fn from_utf16(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|c| c.unwrap_or('?'))
        .collect()
}

/// `LPAD(s, length, filler)`: NULL for a negative length or an empty
/// filler.
pub fn lpad() -> ScalarUDF {
    pad::<true>("lpad")
}

pub fn rpad() -> ScalarUDF {
    pad::<false>("rpad")
}

/// `CHR(n)`: the character of `n` modulo 256; empty for a negative `n`.
pub fn chr() -> ScalarUDF {
    RowFn::udf(
        "chr",
        exact(vec![vec![DataType::Int64]]),
        text_result,
        |args, _| {
            Ok(string(integer(&args[0]).map(|n| {
                if n < 0 {
                    String::new()
                } else {
                    char::from((n % 256) as u8).to_string()
                }
            })))
        },
    )
}

/// `UNHEX(s)`: the bytes of hexadecimal text; an odd-length text's first
/// digit is dropped for a leading zero byte, and text that is not
/// hexadecimal gives NULL (Flink 2.3's answers).
pub fn unhex() -> ScalarUDF {
    RowFn::udf(
        "unhex",
        exact(vec![vec![DataType::Utf8]]),
        |_| Ok(DataType::Binary),
        |args, _| Ok(ScalarValue::Binary(text(&args[0]).and_then(unhex_text))),
    )
}

fn unhex_text(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    let value = |d: u8| char::from(d).to_digit(16).map(|v| v as u8);
    let (mut out, digits) = match digits.len() % 2 {
        1 => {
            value(digits[0])?;
            (vec![0u8], &digits[1..])
        }
        _ => (Vec::with_capacity(digits.len() / 2), digits),
    };
    for pair in digits.chunks_exact(2) {
        out.push(value(pair[0])? << 4 | value(pair[1])?);
    }
    Some(out)
}

fn side<const LEFT: bool>(name: &'static str) -> ScalarUDF {
    RowFn::udf(
        name,
        exact(vec![vec![DataType::Utf8, DataType::Int64]]),
        text_result,
        side_row::<LEFT>,
    )
}

fn side_row<const LEFT: bool>(args: &[ScalarValue], _: &DataType) -> Result<ScalarValue> {
    let (Some(s), Some(n)) = (text(&args[0]), integer(&args[1])) else {
        return Ok(string(None));
    };
    let n = usize::try_from(n).unwrap_or(0);
    let chars = s.chars().count();
    Ok(string(Some(if LEFT {
        s.chars().take(n).collect()
    } else {
        s.chars().skip(chars.saturating_sub(n)).collect()
    })))
}

/// `LEFT(s, n)`, `RIGHT(s, n)`: empty for a negative `n`.
pub fn left() -> ScalarUDF {
    side::<true>("left")
}

pub fn right() -> ScalarUDF {
    side::<false>("right")
}

/// `OVERLAY(s PLACING r FROM start [FOR length])`: `s` unchanged when
/// `start` is past its end.
pub fn overlay() -> ScalarUDF {
    RowFn::udf(
        "overlay",
        exact(vec![
            vec![DataType::Utf8, DataType::Utf8, DataType::Int64],
            vec![
                DataType::Utf8,
                DataType::Utf8,
                DataType::Int64,
                DataType::Int64,
            ],
        ]),
        text_result,
        |args, _| {
            let (Some(s), Some(r), Some(start)) =
                (text(&args[0]), text(&args[1]), integer(&args[2]))
            else {
                return Ok(string(None));
            };
            let length = match args.get(3) {
                None => r.encode_utf16().count() as i64,
                Some(l) => match integer(l) {
                    Some(l) => l,
                    None => return Ok(string(None)),
                },
            };
            let s = utf16(s);
            let units = s.len() as i64;
            if start > units || start < 1 || length < 0 {
                return Ok(string(Some(from_utf16(&s))));
            }
            let head = &s[..(start - 1) as usize];
            let tail_from =
                usize::try_from((start - 1).saturating_add(length)).unwrap_or(usize::MAX);
            let tail = s.get(tail_from..).unwrap_or_default();
            Ok(string(Some(format!(
                "{}{r}{}",
                from_utf16(head),
                from_utf16(tail)
            ))))
        },
    )
}

/// `INITCAP(s)` as Flink's (Calcite's) runs it: ASCII letters and digits
/// make words, the first letter of each upper case and the rest lower;
/// every other character, accented letters too, separates words and is
/// left as it is.
pub fn initcap() -> ScalarUDF {
    RowFn::udf(
        "initcap",
        exact(vec![vec![DataType::Utf8]]),
        text_result,
        |args, _| Ok(string(text(&args[0]).map(initcap_of))),
    )
}

fn initcap_of(s: &str) -> String {
    let mut starting = true;
    s.chars()
        .map(|c| match c {
            '0'..='9' => {
                starting = false;
                c
            }
            'A'..='Z' if !starting => c.to_ascii_lowercase(),
            'a'..='z' if starting => {
                starting = false;
                c.to_ascii_uppercase()
            }
            'A'..='Z' | 'a'..='z' => {
                starting = false;
                c
            }
            _ => {
                starting = true;
                c
            }
        })
        .collect()
}

/// `ASCII(s)`: Flink's is the first byte of `s` in UTF-8, a signed Java
/// byte (so `é` is -61), and 0 for the empty string.
pub fn ascii() -> ScalarUDF {
    RowFn::udf(
        "ascii",
        exact(vec![vec![DataType::Utf8]]),
        |_| Ok(DataType::Int32),
        |args, _| {
            Ok(ScalarValue::Int32(text(&args[0]).map(|s| {
                s.as_bytes().first().map_or(0, |b| i32::from(*b as i8))
            })))
        },
    )
}

/// A DOUBLE or FLOAT cast to text, as Java's `Double.toString` (or, for a
/// FLOAT, `Float.toString`, with the float's own shortest digits) writes
/// it (`1.0E10`, `1.0E-4`, `0.1`).
pub fn double_text() -> ScalarUDF {
    RowFn::udf(
        "flink_double_text",
        Signature::any(1, Volatility::Immutable),
        text_result,
        |args, _| {
            Ok(string(match &args[0] {
                ScalarValue::Float32(v) => v.map(crate::java_format::java_float),
                other => super::row_fn::double(other).map(crate::java_format::java_double),
            }))
        },
    )
}

/// `UPPER`/`LOWER` of a constant whose case mapping changes its length
/// (`'straße'` upper-cased is 7 characters): Flink's result keeps the
/// constant's `CHAR(n)` type, so its text is cut to `n` UTF-16 units
/// (`STRASS`); the folded text, or `None` when the length does not
/// change. A mapping that shortens the text, or a cut inside a surrogate
/// pair, is refused.
pub fn constant_case(function: &str, arg: &Expr) -> Result<Option<String>> {
    let Some(ScalarValue::Utf8(Some(text))) = super::math::constant_value(arg) else {
        return Ok(None);
    };
    let mapped = if function == "upper" {
        text.to_uppercase()
    } else {
        text.to_lowercase()
    };
    let length = text.encode_utf16().count();
    let units: Vec<u16> = mapped.encode_utf16().collect();
    if units.len() == length {
        return Ok(None);
    }
    match (units.len() > length)
        .then(|| String::from_utf16(&units[..length]).ok())
        .flatten()
    {
        Some(cut) => Ok(Some(cut)),
        None => plan_err!(
            "{}('{text}') is refused: its case mapping changes the constant's length, and \
             Flink keeps the constant's CHAR({length}) type",
            function.to_uppercase()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{substring_of, unhex_text};

    #[test]
    fn unhex_reads_hex_as_flink_does() {
        assert_eq!(unhex_text("616263"), Some(b"abc".to_vec()));
        assert_eq!(unhex_text("ABC"), Some(vec![0, 0xbc]));
        assert_eq!(unhex_text("fF00"), Some(vec![0xff, 0]));
        assert_eq!(unhex_text(""), Some(vec![]));
        assert_eq!(unhex_text("6g"), None);
        assert_eq!(unhex_text(" 61"), None);
    }

    #[test]
    fn substrings_count_as_flink_counts() {
        let s = "Hello World";
        assert_eq!(substring_of(s, 2, Some(3)), Some("ell"));
        assert_eq!(substring_of(s, 0, Some(3)), Some("Hel"));
        assert_eq!(substring_of(s, -3, Some(2)), Some("rl"));
        assert_eq!(substring_of(s, -3, None), Some("rld"));
        assert_eq!(substring_of(s, 20, None), Some(""));
        assert_eq!(substring_of(s, 2, Some(0)), Some(""));
        assert_eq!(substring_of(s, 2, Some(-1)), None);
        assert_eq!(substring_of(s, -20, Some(12)), Some(""));
    }
}
