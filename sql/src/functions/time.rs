//! Time functions: `PROCTIME()`, the wall clock (`CURRENT_TIMESTAMP`,
//! `NOW()`, `LOCALTIMESTAMP`, `CURRENT_DATE`), `DATE_FORMAT`.

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

/// `CURRENT_TIMESTAMP` and `NOW()`: a TIMESTAMP_LTZ(3) of the wall clock
/// when the row is processed, as Flink gives it in a streaming job.
/// DataFusion's `now()` is a nanosecond timestamp folded to the job's
/// start at planning, which a job that runs for days would keep.
pub fn current_timestamp() -> ScalarUDF {
    wall_clock_ltz("flink_current_timestamp")
}

/// `CURRENT_ROW_TIMESTAMP()`: the same, which Flink evaluates per row in
/// batch mode too.
pub fn current_row_timestamp() -> ScalarUDF {
    wall_clock_ltz("current_row_timestamp")
}

/// `UNIX_TIMESTAMP()`: seconds since the epoch now, per row.
pub fn unix_timestamp_now() -> ScalarUDF {
    super::row_fn::RowFn::udf(
        "flink_unix_timestamp_now",
        Signature::exact(vec![], Volatility::Volatile),
        |_| Ok(DataType::Int64),
        |_, _| {
            Ok(ScalarValue::Int64(Some(
                runnel_engine::time::wall_clock_millis().div_euclid(1000),
            )))
        },
    )
}

fn wall_clock_ltz(name: &'static str) -> ScalarUDF {
    super::row_fn::RowFn::udf(
        name,
        Signature::exact(vec![], Volatility::Volatile),
        |_| {
            Ok(DataType::Timestamp(
                TimeUnit::Millisecond,
                Some("UTC".into()),
            ))
        },
        |_, _| {
            Ok(ScalarValue::TimestampMillisecond(
                Some(runnel_engine::time::wall_clock_millis()),
                Some("UTC".into()),
            ))
        },
    )
}

/// `LOCALTIMESTAMP`: a TIMESTAMP(3) of the wall clock in the session time
/// zone, which is UTC in Runnel.
pub fn local_timestamp() -> ScalarUDF {
    super::row_fn::RowFn::udf(
        "flink_localtimestamp",
        Signature::exact(vec![], Volatility::Volatile),
        |_| Ok(DataType::Timestamp(TimeUnit::Millisecond, None)),
        |_, _| {
            Ok(ScalarValue::TimestampMillisecond(
                Some(runnel_engine::time::wall_clock_millis()),
                None,
            ))
        },
    )
}

/// `CURRENT_DATE`: today in the session time zone (UTC), per row.
pub fn current_date() -> ScalarUDF {
    super::row_fn::RowFn::udf(
        "flink_current_date",
        Signature::exact(vec![], Volatility::Volatile),
        |_| Ok(DataType::Date32),
        |_, _| {
            let days = runnel_engine::time::wall_clock_millis().div_euclid(86_400_000);
            Ok(ScalarValue::Date32(i32::try_from(days).ok()))
        },
    )
}

/// Whether a computed column's SQL is `PROCTIME()`.
pub fn is_proctime(sql: &str) -> bool {
    let compact: String = sql.chars().filter(|c| !c.is_whitespace()).collect();
    compact.eq_ignore_ascii_case("PROCTIME()")
}

/// Flink's `DATE_FORMAT(ts, pattern)`: the timestamp as text in a Java
/// date-time pattern (`'yyyy-MM-dd HH:mm'`), translated to chrono's items
/// once per batch (`java_format`). A constant pattern with a letter that
/// cannot be rendered as Java renders it is refused when the query is
/// planned. The first argument may be any timestamp or a string (read as a
/// timestamp, as Flink reads it).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateFormat {
    signature: Signature,
    aliases: Vec<String>,
}

impl DateFormat {
    pub fn udf() -> ScalarUDF {
        ScalarUDF::from(DateFormat {
            signature: Signature::any(2, Volatility::Immutable),
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

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs<'_>,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let time = args.arg_fields.first().map(|f| f.data_type());
        if !matches!(
            time,
            Some(
                DataType::Timestamp(_, _)
                    | DataType::Date32
                    | DataType::Date64
                    | DataType::Utf8
                    | DataType::Utf8View
                    | DataType::LargeUtf8
                    | DataType::Null
            )
        ) {
            return datafusion::common::plan_err!(
                "DATE_FORMAT takes a TIMESTAMP or a STRING, not {}",
                time.map_or_else(|| "nothing".to_string(), |t| t.to_string())
            );
        }
        if let Some(Some(ScalarValue::Utf8(Some(p)) | ScalarValue::Utf8View(Some(p)))) =
            args.scalar_arguments.get(1)
            && let Err(why) = crate::java_format::translate(p)
        {
            return datafusion::common::plan_err!("DATE_FORMAT: {why}");
        }
        Ok(std::sync::Arc::new(
            datafusion::arrow::datatypes::Field::new(self.name(), DataType::Utf8, true),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, StringBuilder};
        use datafusion::arrow::datatypes::TimestampMillisecondType;
        use std::fmt::Write;
        let rows = args.number_rows;
        let [time, pattern] = args.args.as_slice() else {
            return datafusion::common::exec_err!("DATE_FORMAT takes two arguments");
        };
        let millis = datafusion::arrow::compute::cast(
            &time.to_array(rows)?,
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )?;
        let millis = millis.as_primitive::<TimestampMillisecondType>();
        let patterns = pattern.to_array(rows)?;
        let patterns = datafusion::arrow::compute::cast(&patterns, &DataType::Utf8)?;
        let patterns = patterns.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(rows, rows * 10);
        // The pattern of the last row and its items: a constant pattern is
        // translated once.
        let mut items: Option<(String, Vec<chrono::format::Item<'static>>, bool)> = None;
        // Rows of a stream are close in time: with no field finer than the
        // minute, a row in the previous row's minute reuses its text.
        let mut last: Option<(i64, String)> = None;
        for row in 0..rows {
            if millis.is_null(row) || patterns.is_null(row) {
                out.append_null();
                continue;
            }
            let pattern = patterns.value(row);
            if items.as_ref().is_none_or(|(p, _, _)| p != pattern) {
                let translated = crate::java_format::translate(pattern).map_err(|why| {
                    datafusion::error::DataFusionError::Execution(format!("DATE_FORMAT: {why}"))
                })?;
                let per_minute = translated.iter().all(minute_or_coarser);
                items = Some((pattern.to_string(), translated, per_minute));
                last = None;
            }
            let Some((_, items, per_minute)) = items.as_ref() else {
                continue;
            };
            let value = millis.value(row);
            let minute = value.div_euclid(60_000);
            if *per_minute && let Some((_, text)) = last.as_ref().filter(|(m, _)| *m == minute) {
                out.append_value(text);
                continue;
            }
            let Some(time) = chrono::DateTime::from_timestamp_millis(value) else {
                out.append_null();
                continue;
            };
            let formatted = time.naive_utc().format_with_items(items.iter());
            let mut text = last.take().map(|(_, text)| text).unwrap_or_default();
            text.clear();
            write!(text, "{formatted}").map_err(|_| {
                datafusion::error::DataFusionError::Execution(format!(
                    "DATE_FORMAT cannot render {value} ms"
                ))
            })?;
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
