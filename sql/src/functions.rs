//! Flink functions DataFusion does not have.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `PROCTIME()`: the wall clock when the row is processed. Volatile, so
/// DataFusion evaluates it per batch instead of folding it at planning.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ProcTime {
    signature: Signature,
    aliases: Vec<String>,
}

impl ProcTime {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(ProcTime {
            signature: Signature::exact(vec![], Volatility::Volatile),
            // Identifiers keep their case, as in Flink; accept both spellings.
            aliases: vec!["PROCTIME".to_string()],
        })
    }
}

impl ScalarUDFImpl for ProcTime {
    fn name(&self) -> &str {
        "proctime"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
            Some(runnel_engine::time::wall_clock_millis()),
            None,
        )))
    }
}

/// Whether a computed column's SQL is `PROCTIME()`.
pub fn is_proctime(sql: &str) -> bool {
    let compact: String = sql.chars().filter(|c| !c.is_whitespace()).collect();
    compact.eq_ignore_ascii_case("PROCTIME()")
}

/// `DATE_FORMAT(ts, pattern)` (DataFusion's `to_char`, chrono patterns)
/// with the pattern parsed once per batch: DataFusion's re-parses it for
/// every row, which was a tenth of Nexmark q15's CPU. Naive millisecond
/// timestamps with a constant pattern take that path; anything else, and
/// a pattern chrono cannot parse, is DataFusion's own `to_char`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateFormat {
    signature: Signature,
    aliases: Vec<String>,
}

impl DateFormat {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(DateFormat {
            signature: datafusion::functions::datetime::to_char()
                .signature()
                .clone(),
            aliases: vec!["DATE_FORMAT".to_string()],
        })
    }
}

impl ScalarUDFImpl for DateFormat {
    fn name(&self) -> &str {
        "date_format"
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
        use chrono::format::StrftimeItems;
        use datafusion::arrow::array::{Array, AsArray, StringBuilder};
        use datafusion::arrow::datatypes::TimestampMillisecondType;
        use std::fmt::Write;
        let pattern = match args.args.get(1) {
            Some(ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(p)) | ScalarValue::Utf8View(Some(p)),
            )) => Some(p.clone()),
            _ => None,
        };
        let items = pattern.and_then(|p| StrftimeItems::new(&p).parse_to_owned().ok());
        let (values, items) = match (args.args.first(), items) {
            (Some(ColumnarValue::Array(values)), Some(items))
                if values.data_type() == &DataType::Timestamp(TimeUnit::Millisecond, None) =>
            {
                (values.clone(), items)
            }
            _ => return datafusion::functions::datetime::to_char().invoke_with_args(args),
        };
        let millis = values.as_primitive::<TimestampMillisecondType>();
        let mut out = StringBuilder::with_capacity(millis.len(), millis.len() * 10);
        // Rows of a stream are close in time: with no field finer than the
        // minute, a row in the previous row's minute reuses its text.
        let per_minute = items.iter().all(minute_or_coarser);
        let mut last: Option<(i64, String)> = None;
        for value in millis.iter() {
            let Some(value) = value else {
                out.append_null();
                continue;
            };
            let minute = value.div_euclid(60_000);
            if per_minute && let Some((_, text)) = last.as_ref().filter(|(m, _)| *m == minute) {
                out.append_value(text);
                continue;
            }
            let Some(time) = chrono::DateTime::from_timestamp_millis(value) else {
                out.append_null();
                continue;
            };
            let formatted = time.naive_utc().format_with_items(items.iter());
            // A pattern chrono parsed but cannot apply to this value goes
            // to `to_char`.
            if !per_minute {
                if write!(out, "{formatted}").is_err() {
                    return datafusion::functions::datetime::to_char().invoke_with_args(args);
                }
                out.append_value("");
                continue;
            }
            let mut text = last.take().map(|(_, text)| text).unwrap_or_default();
            text.clear();
            if write!(text, "{formatted}").is_err() {
                return datafusion::functions::datetime::to_char().invoke_with_args(args);
            }
            out.append_value(&text);
            last = Some((minute, text));
        }
        Ok(ColumnarValue::Array(std::sync::Arc::new(out.finish())))
    }
}

/// Whether a pattern item reads nothing finer than the minute (so every
/// time in a minute formats alike).
fn minute_or_coarser(item: &chrono::format::Item<'_>) -> bool {
    use chrono::format::{Fixed, Item, Numeric};
    match item {
        Item::Literal(_) | Item::OwnedLiteral(_) | Item::Space(_) | Item::OwnedSpace(_) => true,
        Item::Numeric(numeric, _) => matches!(
            numeric,
            Numeric::Year
                | Numeric::YearDiv100
                | Numeric::YearMod100
                | Numeric::IsoYear
                | Numeric::IsoYearDiv100
                | Numeric::IsoYearMod100
                | Numeric::Quarter
                | Numeric::Month
                | Numeric::Day
                | Numeric::WeekFromSun
                | Numeric::WeekFromMon
                | Numeric::IsoWeek
                | Numeric::NumDaysFromSun
                | Numeric::WeekdayFromMon
                | Numeric::Ordinal
                | Numeric::Hour
                | Numeric::Hour12
                | Numeric::Minute
        ),
        Item::Fixed(fixed) => matches!(
            fixed,
            Fixed::ShortMonthName
                | Fixed::LongMonthName
                | Fixed::ShortWeekdayName
                | Fixed::LongWeekdayName
                | Fixed::LowerAmPm
                | Fixed::UpperAmPm
        ),
        _ => false,
    }
}

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
