//! `DataFormatConversionConfiguration`: JSON records in, Parquet objects
//! out, through Arrow. Where AWS reads the schema from a Glue table, Runnel
//! reads it from its own config: `[firehose.schemas]` maps
//! `"<DatabaseName>.<TableName>"` to the table's columns, written as a
//! `CREATE TABLE` column list (`"id BIGINT, name STRING, ts TIMESTAMP(3)"`).
//! A record that does not fit the schema goes to the error output as
//! `format-conversion-failed`, never silently nulled.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::error::{FirehoseError, Result};

/// Records decoded together; a chunk that fails is decoded again record
/// by record to find which ones do not fit.
const CHUNK: usize = 1024;

/// A record that does not fit the schema: its index, and why.
pub type Unfit = (usize, String);

#[derive(Debug, Clone)]
pub struct Conversion {
    pub schema: SchemaRef,
    compression: Compression,
    /// `SchemaConfiguration` as given, named in each failed record's line.
    table: Value,
}

fn invalid(message: impl Into<String>) -> FirehoseError {
    FirehoseError::InvalidArgument(message.into())
}

/// `"id BIGINT, name STRING"` as an Arrow schema (every column nullable,
/// as a JSON field may be absent).
pub fn parse_columns(text: &str) -> std::result::Result<SchemaRef, String> {
    let mut fields = Vec::new();
    for column in split_columns(text) {
        let column = column.trim();
        let (name, kind) = column
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("column '{column}' has no type"))?;
        let kind = kind.trim().to_ascii_uppercase();
        let data_type = match kind.as_str() {
            "BOOLEAN" => DataType::Boolean,
            "TINYINT" => DataType::Int8,
            "SMALLINT" => DataType::Int16,
            "INT" | "INTEGER" => DataType::Int32,
            "BIGINT" => DataType::Int64,
            "FLOAT" => DataType::Float32,
            "DOUBLE" => DataType::Float64,
            "STRING" => DataType::Utf8,
            "DATE" => DataType::Date32,
            "TIMESTAMP" | "TIMESTAMP(3)" => DataType::Timestamp(TimeUnit::Millisecond, None),
            "TIMESTAMP(6)" => DataType::Timestamp(TimeUnit::Microsecond, None),
            other if other.starts_with("VARCHAR") || other.starts_with("CHAR") => DataType::Utf8,
            other => {
                return Err(format!(
                    "column '{name}' has type {other}, which conversion does not take (BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, STRING, VARCHAR, DATE, TIMESTAMP(3), TIMESTAMP(6))"
                ));
            }
        };
        fields.push(Field::new(name, data_type, true));
    }
    if fields.is_empty() {
        return Err("the column list is empty".into());
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Columns split at commas outside parentheses (`DECIMAL(10, 2)` stays
/// whole, to be refused by name).
fn split_columns(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

impl Conversion {
    /// Reads an enabled `DataFormatConversionConfiguration`; `schemas` is
    /// the config's table columns by `database.table`.
    pub fn parse(config: &Value, schemas: &HashMap<String, String>) -> Result<Conversion> {
        let schema_config = config.get("SchemaConfiguration").ok_or_else(|| {
            invalid("SchemaConfiguration must be given for data format conversion.")
        })?;
        let name = |field: &str| {
            schema_config
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let table = format!("{}.{}", name("DatabaseName"), name("TableName"));
        let columns = schemas.get(&table).ok_or_else(|| {
            invalid(format!(
                "No schema for table {table}: Runnel reads it from its config, [firehose.schemas] \"{table}\" = \"col TYPE, ...\"."
            ))
        })?;
        let schema = parse_columns(columns).map_err(|why| {
            invalid(format!(
                "The schema of {table} in [firehose.schemas]: {why}."
            ))
        })?;
        if let Some(deserializer) = config.pointer("/InputFormatConfiguration/Deserializer") {
            let options = deserializer
                .get("OpenXJsonSerDe")
                .or_else(|| deserializer.get("HiveJsonSerDe"));
            if let Some(options) = options.and_then(Value::as_object) {
                for (key, value) in options {
                    let default = matches!(
                        (key.as_str(), value),
                        ("CaseInsensitive", Value::Bool(true))
                            | ("ConvertDotsInJsonKeysToUnderscores", Value::Bool(false))
                    ) || (key == "ColumnToJsonKeyMappings"
                        && value.as_object().is_some_and(|m| m.is_empty()));
                    if !default {
                        return Err(invalid(format!(
                            "The JSON deserializer option {key} = {value} is not supported by this Runnel version."
                        )));
                    }
                }
            }
        }
        let serializer = config.pointer("/OutputFormatConfiguration/Serializer");
        if serializer.and_then(|s| s.get("OrcSerDe")).is_some() {
            return Err(invalid(
                "OrcSerDe: ORC output is not supported (no maintained Rust ORC writer); use ParquetSerDe.",
            ));
        }
        let parquet = serializer.and_then(|s| s.get("ParquetSerDe"));
        let compression = match parquet
            .and_then(|p| p.get("Compression"))
            .and_then(Value::as_str)
        {
            None | Some("SNAPPY") => Compression::SNAPPY,
            Some("GZIP") => Compression::GZIP(GzipLevel::default()),
            Some("UNCOMPRESSED") => Compression::UNCOMPRESSED,
            Some(other) => {
                return Err(invalid(format!(
                    "ParquetSerDe Compression '{other}' is not one of UNCOMPRESSED, GZIP, SNAPPY."
                )));
            }
        };
        let field = |name: &str| schema_config.get(name).cloned().unwrap_or(Value::Null);
        Ok(Conversion {
            schema,
            compression,
            table: serde_json::json!({
                "catalogId": field("CatalogId"),
                "databaseName": field("DatabaseName"),
                "tableName": field("TableName"),
                "region": field("Region"),
                "versionId": field("VersionId"),
            }),
        })
    }

    /// The JSON line Firehose writes under `format-conversion-failed` for
    /// a record that does not fit: its own schema, not processing's.
    pub fn failure_line(&self, arrival_ms: u64, raw: &[u8], why: &str, now_ms: u64) -> Vec<u8> {
        use base64::Engine;
        let mut line = serde_json::json!({
            "attemptsMade": 1,
            "arrivalTimestamp": arrival_ms,
            "lastErrorCode": "DataFormatConversion.MalformedData",
            "lastErrorMessage": why,
            "attemptEndingTimestamp": now_ms,
            "rawData": base64::engine::general_purpose::STANDARD.encode(raw),
            "dataCatalogTable": self.table,
        })
        .to_string()
        .into_bytes();
        line.push(b'\n');
        line
    }

    /// The records as one Parquet file, and the indexes of the records
    /// that do not fit the schema, each with why.
    pub fn to_parquet(&self, records: &[&[u8]]) -> Result<(Vec<u8>, Vec<Unfit>)> {
        let properties = WriterProperties::builder()
            .set_compression(self.compression)
            .build();
        let parquet_error = |e: parquet::errors::ParquetError| {
            FirehoseError::Internal(format!("writing Parquet: {e}"))
        };
        let mut writer = ArrowWriter::try_new(Vec::new(), self.schema.clone(), Some(properties))
            .map_err(parquet_error)?;
        let mut failures = Vec::new();
        for (chunk_index, chunk) in records.chunks(CHUNK).enumerate() {
            let base = chunk_index * CHUNK;
            match self.decode(chunk) {
                Ok(batch) => writer.write(&batch).map_err(parquet_error)?,
                Err(_) => {
                    for (i, record) in chunk.iter().enumerate() {
                        match self.decode(std::slice::from_ref(record)) {
                            Ok(batch) => writer.write(&batch).map_err(parquet_error)?,
                            Err(why) => failures.push((base + i, why)),
                        }
                    }
                }
            }
        }
        let bytes = writer.into_inner().map_err(parquet_error)?;
        Ok((bytes, failures))
    }

    fn decode(&self, records: &[&[u8]]) -> std::result::Result<arrow_array::RecordBatch, String> {
        let mut decoder = arrow_json::ReaderBuilder::new(self.schema.clone())
            .with_batch_size(records.len().max(1))
            .build_decoder()
            .map_err(|e| e.to_string())?;
        for record in records {
            // One JSON object per record: anything else does not fit.
            match serde_json::from_slice::<serde::de::IgnoredAny>(record) {
                Ok(_) if record.trim_ascii_start().first() == Some(&b'{') => {}
                _ => return Err("the record is not one JSON object".into()),
            }
            let read = decoder.decode(record).map_err(|e| e.to_string())?;
            if read != record.len() {
                return Err("the record is not one JSON object".into());
            }
        }
        decoder
            .flush()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no rows".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_lists_read_as_create_table_writes_them() {
        let schema =
            parse_columns("id BIGINT, name VARCHAR(20), price DOUBLE, at TIMESTAMP(3)").unwrap();
        let types: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            vec![
                DataType::Int64,
                DataType::Utf8,
                DataType::Float64,
                DataType::Timestamp(TimeUnit::Millisecond, None)
            ]
        );
        let error = parse_columns("amount DECIMAL(10, 2)").unwrap_err();
        assert!(error.contains("DECIMAL(10, 2)"), "{error}");
    }

    #[test]
    fn records_that_do_not_fit_are_named_not_nulled() {
        let conversion = Conversion {
            schema: parse_columns("id BIGINT, name STRING").unwrap(),
            compression: Compression::SNAPPY,
            table: Value::Null,
        };
        let records: Vec<&[u8]> = vec![
            br#"{"id": 1, "name": "a"}"#,
            br#"{"id": "not a number", "name": "b"}"#,
            b"not json",
            br#"{"id": 4}"#,
        ];
        let (bytes, failures) = conversion.to_parquet(&records).unwrap();
        let failed: Vec<usize> = failures.iter().map(|(i, _)| *i).collect();
        assert_eq!(failed, vec![1, 2]);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .unwrap()
        .build()
        .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 2);
    }
}
