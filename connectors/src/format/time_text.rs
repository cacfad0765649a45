//! TIME columns in the text formats, json and csv: read as text and then
//! as Flink's format reads a TIME (json: `HH:mm:ss[.fraction]`; csv: Java's
//! `LocalTime.parse`, which also takes `HH:mm`), written as Flink writes
//! one (`HH:mm:ss`, a fraction only when there is one). Flink's json
//! format keeps a fraction in a TIME(0) column; Runnel's TIME(0) holds
//! whole seconds, so such a value is an error, not a different time.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::array::{Time32MillisecondArray, Time32SecondArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use runnel_timefmt::time_of_day;

use crate::ConnectorError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Json,
    Csv,
}

/// Whether the format can carry `schema`'s TIME columns: json and csv
/// can, as top-level columns.
pub fn check(schema: &Schema, format: &str) -> Result<(), ConnectorError> {
    let text_format = matches!(format, "json" | "csv");
    for field in schema.fields() {
        if matches!(field.data_type(), DataType::Time32(_)) && !text_format {
            return Err(ConnectorError::Option(format!(
                "column '{}' is a TIME, which the {format} format does not carry here; \
                 the json and csv formats do",
                field.name()
            )));
        }
        if !matches!(field.data_type(), DataType::Time32(_)) && holds_time(field.data_type()) {
            return Err(ConnectorError::Option(format!(
                "column '{}' holds a TIME inside a nested type, which is not supported",
                field.name()
            )));
        }
    }
    Ok(())
}

fn holds_time(data_type: &DataType) -> bool {
    match data_type {
        DataType::Time32(_) | DataType::Time64(_) => true,
        DataType::List(item) | DataType::LargeList(item) => holds_time(item.data_type()),
        DataType::Map(entries, _) => holds_time(entries.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| holds_time(f.data_type())),
        _ => false,
    }
}

pub fn has_time(schema: &Schema) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Time32(_)))
}

/// `schema` with its TIME columns read as text.
pub fn text_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Time32(_) => Arc::new(Field::new(f.name(), DataType::Utf8, true)),
                _ => f.clone(),
            })
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// A batch decoded with `text_schema(target)`, its TIME columns read.
/// A value that does not read fails the batch, or, when `skip_bad_rows`
/// (the format's ignore-parse-errors), drops its row.
pub fn times_from_text(
    batch: RecordBatch,
    target: &SchemaRef,
    reading: Reading,
    skip_bad_rows: bool,
) -> Result<RecordBatch, ConnectorError> {
    let rows = batch.num_rows();
    let mut good = vec![true; rows];
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (column, field) in batch.columns().iter().zip(target.fields()) {
        let DataType::Time32(unit) = field.data_type() else {
            columns.push(column.clone());
            continue;
        };
        let text = column.as_string_opt::<i32>().ok_or_else(|| {
            ConnectorError::Option(format!("column '{}' was not read as text", field.name()))
        })?;
        let mut millis: Vec<Option<i64>> = Vec::with_capacity(rows);
        for (row, value) in text.iter().enumerate() {
            let Some(value) = value else {
                millis.push(None);
                continue;
            };
            let read = match reading {
                Reading::Json => time_of_day::parse_json_field(value)
                    .filter(|m| *unit != TimeUnit::Second || m % 1000 == 0),
                Reading::Csv => time_of_day::parse_csv_field(value).map(|m| match unit {
                    TimeUnit::Second => m - m % 1000,
                    _ => m,
                }),
            };
            match read {
                Some(m) => millis.push(Some(m)),
                None if skip_bad_rows => {
                    good[row] = false;
                    millis.push(None);
                }
                None => {
                    return Err(ConnectorError::Option(format!(
                        "column '{}': '{value}' is not a TIME({}) (HH:mm:ss{})",
                        field.name(),
                        if *unit == TimeUnit::Second { 0 } else { 3 },
                        if *unit == TimeUnit::Second {
                            ", whole seconds"
                        } else {
                            "[.fraction]"
                        }
                    )));
                }
            }
        }
        columns.push(match unit {
            TimeUnit::Second => Arc::new(Time32SecondArray::from_iter(
                millis.iter().map(|m| m.map(|m| (m / 1000) as i32)),
            )),
            _ => Arc::new(Time32MillisecondArray::from_iter(
                millis.iter().map(|m| m.map(|m| m as i32)),
            )),
        });
    }
    let read = RecordBatch::try_new(target.clone(), columns)?;
    if good.iter().all(|g| *g) {
        return Ok(read);
    }
    Ok(filter_record_batch(&read, &BooleanArray::from(good))?)
}

/// Batches decoded with `text_schema(target)` (`target` `None`: decoded as
/// they are), their TIME columns read.
pub fn read_times(
    batches: Vec<RecordBatch>,
    target: Option<&SchemaRef>,
    reading: Reading,
    skip_bad_rows: bool,
) -> Result<Vec<RecordBatch>, ConnectorError> {
    let Some(target) = target else {
        return Ok(batches);
    };
    batches
        .into_iter()
        .map(|batch| times_from_text(batch, target, reading, skip_bad_rows))
        .collect()
}

/// `batch` with its TIME columns as the text Flink's json and csv formats
/// write.
pub fn times_as_text(batch: &RecordBatch) -> Result<RecordBatch, ConnectorError> {
    if !has_time(&batch.schema()) {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let millis: Option<Vec<Option<i64>>> = matches!(field.data_type(), DataType::Time32(_))
            .then(|| {
                (0..column.len())
                    .map(|row| crate::display::time_millis(column.as_ref(), row))
                    .collect()
            });
        match millis {
            Some(millis) => {
                fields.push(Field::new(
                    field.name(),
                    DataType::Utf8,
                    field.is_nullable(),
                ));
                columns.push(Arc::new(StringArray::from_iter(
                    millis.iter().map(|m| m.map(time_of_day::field_text)),
                )));
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Array;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("t0", DataType::Time32(TimeUnit::Second), true),
            Field::new("t3", DataType::Time32(TimeUnit::Millisecond), true),
        ]))
    }

    fn text_batch(t0: Vec<Option<&str>>, t3: Vec<Option<&str>>) -> RecordBatch {
        RecordBatch::try_new(
            text_schema(&schema()),
            vec![
                Arc::new(StringArray::from(t0)),
                Arc::new(StringArray::from(t3)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn times_read_and_write_back_as_flink_writes_them() {
        let batch = text_batch(
            vec![Some("12:13:14"), None],
            vec![Some("23:59:59.9"), Some("01:02:03.4567")],
        );
        let read = times_from_text(batch, &schema(), Reading::Json, false).unwrap();
        let written = times_as_text(&read).unwrap();
        let text = |i: usize| {
            let column = written.column(i).as_string::<i32>();
            (0..2)
                .map(|r| column.is_valid(r).then(|| column.value(r).to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(text(0), [Some("12:13:14".to_string()), None]);
        assert_eq!(
            text(1),
            [
                Some("23:59:59.9".to_string()),
                Some("01:02:03.456".to_string())
            ]
        );
    }

    #[test]
    fn a_fraction_in_a_time0_json_field_is_an_error_or_a_skipped_row() {
        let batch = || {
            text_batch(
                vec![Some("08:30:00.750"), Some("08:30:00")],
                vec![None, None],
            )
        };
        let error = times_from_text(batch(), &schema(), Reading::Json, false).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("'08:30:00.750' is not a TIME(0)"),
            "{error}"
        );
        let kept = times_from_text(batch(), &schema(), Reading::Json, true).unwrap();
        assert_eq!(kept.num_rows(), 1);
        // Flink's csv format cuts it to the column's precision.
        let csv = times_from_text(batch(), &schema(), Reading::Csv, false).unwrap();
        assert_eq!(csv.num_rows(), 2);
    }

    #[test]
    fn only_text_formats_carry_time() {
        assert!(check(&schema(), "json").is_ok());
        assert!(check(&schema(), "avro").is_err());
    }
}
