//! Nexmark events as JSON lines, in Flink's `json` format for the nexmark
//! table (nested rows as objects, a missing row as null, timestamps in the
//! SQL standard `yyyy-MM-dd HH:mm:ss.SSS`), so that other engines read the
//! very same events.

use std::io::Write;

use datafusion::arrow::array::{Array, AsArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type, TimestampMillisecondType};
use datafusion::arrow::record_batch::RecordBatch;

use crate::ConnectorError;

/// Writes every row of a batch from the nexmark source as one JSON line.
pub fn write_json_lines(batch: &RecordBatch, out: &mut impl Write) -> Result<(), ConnectorError> {
    let io = |source| ConnectorError::Io {
        path: "nexmark export".into(),
        source,
    };
    let event_type = batch.column(0).as_primitive::<Int32Type>();
    let rows = [
        ("person", batch.column(1).as_struct()),
        ("auction", batch.column(2).as_struct()),
        ("bid", batch.column(3).as_struct()),
    ];
    let mut line = String::with_capacity(1024);
    for row in 0..batch.num_rows() {
        line.clear();
        line.push_str("{\"event_type\":");
        line.push_str(&event_type.value(row).to_string());
        for (name, column) in &rows {
            line.push_str(",\"");
            line.push_str(name);
            line.push_str("\":");
            write_row(column, row, &mut line);
        }
        line.push_str("}\n");
        out.write_all(line.as_bytes()).map_err(io)?;
    }
    Ok(())
}

fn write_row(column: &StructArray, row: usize, line: &mut String) {
    if column.is_null(row) {
        line.push_str("null");
        return;
    }
    line.push('{');
    for (i, (field, child)) in column.fields().iter().zip(column.columns()).enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push('"');
        line.push_str(field.name());
        line.push_str("\":");
        if child.is_null(row) {
            line.push_str("null");
            continue;
        }
        match field.data_type() {
            DataType::Int64 => {
                line.push_str(&child.as_primitive::<Int64Type>().value(row).to_string())
            }
            DataType::Utf8 => push_json_string(child.as_string::<i32>().value(row), line),
            DataType::Timestamp(_, _) => {
                let ms = child.as_primitive::<TimestampMillisecondType>().value(row);
                let text = chrono::DateTime::from_timestamp_millis(ms).map_or_else(
                    || ms.to_string(),
                    |t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                );
                push_json_string(&text, line);
            }
            _ => line.push_str("null"),
        }
    }
    line.push('}');
}

fn push_json_string(value: &str, line: &mut String) {
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if (c as u32) < 0x20 => line.push_str(&format!("\\u{:04x}", c as u32)),
            c => line.push(c),
        }
    }
    line.push('"');
}
