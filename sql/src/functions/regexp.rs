//! Flink's regular-expression functions, with a worker's last pattern
//! compiled once.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Flink's `REGEXP_EXTRACT(str, regex [, index])`: the `index`th group of
/// the first match (0, the default, is the whole match), NULL when there
/// is no match, the group did not take part, or an argument is NULL. The
/// pattern is compiled once per thread, and the group goes straight into a
/// string column (DataFusion's `regexp_match(...)[i]` builds a list of
/// every group of every row first).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexpExtract {
    signature: Signature,
    aliases: Vec<String>,
}

impl RegexpExtract {
    pub fn udf() -> ScalarUDF {
        use datafusion::logical_expr::TypeSignature;
        ScalarUDF::from(RegexpExtract {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8, DataType::Int64]),
                ],
                Volatility::Immutable,
            ),
            aliases: vec!["REGEXP_EXTRACT".to_string()],
        })
    }
}

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexp_extract"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, StringBuilder};
        use datafusion::arrow::datatypes::Int64Type;
        use datafusion::common::exec_err;
        let rows = args.number_rows;
        let (Some(text), Some(pattern)) = (args.args.first(), args.args.get(1)) else {
            return exec_err!("REGEXP_EXTRACT takes a string and a regular expression");
        };
        let text = text.to_array(rows)?;
        let text = text.as_string::<i32>();
        // A constant pattern or index (the usual case) is read once, not
        // expanded to a column.
        let patterns = match pattern {
            ColumnarValue::Scalar(ScalarValue::Utf8(pattern)) => PerRow::Constant(pattern.clone()),
            other => PerRow::Column(other.to_array(rows)?),
        };
        let indices = match args.args.get(2) {
            None => PerRow::Constant(Some(0)),
            Some(ColumnarValue::Scalar(ScalarValue::Int64(index))) => {
                PerRow::Constant(index.and_then(|i| usize::try_from(i).ok()))
            }
            Some(other) => PerRow::Column(other.to_array(rows)?),
        };
        let pattern_at = |row: usize| match &patterns {
            PerRow::Constant(pattern) => pattern.as_deref(),
            PerRow::Column(array) => {
                let array = array.as_string::<i32>();
                array.is_valid(row).then(|| array.value(row))
            }
        };
        let index_at = |row: usize| match &indices {
            PerRow::Constant(index) => *index,
            PerRow::Column(array) => {
                let array = array.as_primitive::<Int64Type>();
                array
                    .is_valid(row)
                    .then(|| usize::try_from(array.value(row)).ok())
                    .flatten()
            }
        };
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        LAST_REGEX.with_borrow_mut(|last| {
            let mut locations = None;
            for row in 0..rows {
                let (Some(pattern), Some(index)) = (pattern_at(row), index_at(row)) else {
                    out.append_null();
                    continue;
                };
                if text.is_null(row) {
                    out.append_null();
                    continue;
                }
                if last.as_ref().is_none_or(|(p, _)| p != pattern) {
                    let regex = match regex::Regex::new(pattern) {
                        Ok(regex) => regex,
                        Err(error) => {
                            return exec_err!(
                                "REGEXP_EXTRACT: invalid regular expression '{pattern}': {error}"
                            );
                        }
                    };
                    *last = Some((pattern.to_string(), regex));
                    locations = None;
                }
                let Some((_, regex)) = last.as_ref() else {
                    out.append_null();
                    continue;
                };
                let locations = locations.get_or_insert_with(|| regex.capture_locations());
                let value = text.value(row);
                match regex
                    .captures_read(locations, value)
                    .and_then(|_| locations.get(index))
                {
                    Some((start, end)) => out.append_value(&value[start..end]),
                    None => out.append_null(),
                }
            }
            Ok(())
        })?;
        Ok(ColumnarValue::Array(std::sync::Arc::new(out.finish())))
    }
}

/// An argument that is one value for the whole batch, or a column.
enum PerRow<T> {
    Constant(T),
    Column(datafusion::arrow::array::ArrayRef),
}

thread_local! {
    /// The pattern this worker thread compiled last: reusing it keeps what
    /// its lazy DFA learned in earlier batches.
    static LAST_REGEX: std::cell::RefCell<Option<(String, regex::Regex)>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `pattern` compiled (the worker's last pattern reused), or
/// with `None` when it is not a valid regular expression.
pub(super) fn with_regex<T>(pattern: &str, f: impl FnOnce(Option<&regex::Regex>) -> T) -> T {
    LAST_REGEX.with_borrow_mut(|last| {
        if last.as_ref().is_none_or(|(p, _)| p != pattern) {
            *last = regex::Regex::new(pattern)
                .ok()
                .map(|regex| (pattern.to_string(), regex));
        }
        f(last.as_ref().map(|(_, regex)| regex))
    })
}

/// Flink's `REGEXP_REPLACE(s, regex, replacement)`: every match replaced by
/// the replacement as it is (Flink quotes it: `$1` is two characters); NULL
/// when an argument is NULL or the expression is not valid.
pub fn regexp_replace() -> ScalarUDF {
    use super::row_fn::{RowFn, exact, string, text};
    RowFn::udf(
        "regexp_replace",
        exact(vec![vec![DataType::Utf8, DataType::Utf8, DataType::Utf8]]),
        |_| Ok(DataType::Utf8),
        |args, _| {
            let (Some(value), Some(pattern), Some(replacement)) =
                (text(&args[0]), text(&args[1]), text(&args[2]))
            else {
                return Ok(string(None));
            };
            Ok(string(with_regex(pattern, |regex| {
                regex.map(|regex| {
                    regex
                        .replace_all(value, regex::NoExpand(replacement))
                        .into_owned()
                })
            })))
        },
    )
}
