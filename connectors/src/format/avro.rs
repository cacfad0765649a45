//! `'format' = 'avro'`, as Flink's avro format: a stream record is one
//! row in Avro's binary encoding, with no header, under the schema Flink
//! derives from the table (`AvroSchemaConverter`: a record named `record`
//! in `org.apache.flink.avro.generated`, a nullable column a union of
//! `null` and its type, DECIMAL as `bytes` with the decimal logical type,
//! DATE as `date`, TIMESTAMP and TIMESTAMP_LTZ as `timestamp-millis` or
//! `-micros`). A filesystem sink writes Avro object container files,
//! compressed with `avro.codec` (Flink's default for files: snappy).
//! Rows are encoded and decoded by the `apache-avro` crate.

use std::io::Write;
use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::{Codec, Decimal, DeflateSettings, Schema, from_avro_datum, to_avro_datum};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
};
use datafusion::arrow::record_batch::RecordBatch;

use super::BATCH_ROWS;
use crate::ConnectorError;
use crate::options::Options;

/// Bytes of rows per block of a container file.
const BLOCK_BYTES: usize = 64 * 1024;
/// The longest string or bytes a record is read with.
const MAX_FIELD_BYTES: usize = 16 << 20;

#[derive(Debug, Clone)]
pub struct AvroFormat {
    schema: Arc<Schema>,
    schema_json: String,
    columns: Arc<[Column]>,
    codec: FileCodec,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: Kind,
    nullable: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bytes,
    Decimal(u8, i8),
    Date,
    Millis(Option<Arc<str>>),
    Micros(Option<Arc<str>>),
}

/// `avro.codec`: how a container file's blocks are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileCodec {
    Null,
    Deflate,
    Snappy,
}

impl FileCodec {
    fn name(self) -> &'static str {
        match self {
            FileCodec::Null => "null",
            FileCodec::Deflate => "deflate",
            FileCodec::Snappy => "snappy",
        }
    }

    fn codec(self) -> Codec {
        match self {
            FileCodec::Null => Codec::Null,
            FileCodec::Deflate => Codec::Deflate(DeflateSettings::default()),
            FileCodec::Snappy => Codec::Snappy,
        }
    }
}

fn avro_error(what: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Option(format!("avro: {what}"))
}

impl AvroFormat {
    pub fn from_options(options: &Options, schema: &SchemaRef) -> Result<Self, ConnectorError> {
        // A length in a malformed record is allocated before it is found
        // to overrun the record: no field is longer than a stream record
        // can be (the crate's default bound is 512 MiB).
        apache_avro::util::max_allocation_bytes(MAX_FIELD_BYTES);
        let codec = match options.get("avro.codec").unwrap_or("snappy") {
            c if c.eq_ignore_ascii_case("null") => FileCodec::Null,
            c if c.eq_ignore_ascii_case("deflate") => FileCodec::Deflate,
            c if c.eq_ignore_ascii_case("snappy") => FileCodec::Snappy,
            other => {
                return Err(ConnectorError::Option(format!(
                    "avro.codec '{other}' is not supported; available: null, deflate, snappy"
                )));
            }
        };
        let columns: Vec<Column> = schema
            .fields()
            .iter()
            .map(|field| {
                Ok(Column {
                    name: field.name().clone(),
                    kind: kind_of(field.name(), field.data_type())?,
                    nullable: field.is_nullable(),
                })
            })
            .collect::<Result<_, ConnectorError>>()?;
        let schema_json = schema_json(&columns);
        let parsed = Schema::parse_str(&schema_json).map_err(|e| {
            avro_error(format!(
                "the table's columns make no Avro schema ({e}); Avro names are letters, digits and _"
            ))
        })?;
        Ok(AvroFormat {
            schema: Arc::new(parsed),
            schema_json,
            columns: columns.into(),
            codec,
        })
    }

    pub fn decoder(&self, schema: SchemaRef) -> Decoder {
        Decoder {
            format: self.clone(),
            schema,
        }
    }

    /// Each row as one Avro datum.
    pub fn encode_messages(&self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>, ConnectorError> {
        (0..batch.num_rows())
            .map(|row| to_avro_datum(&self.schema, self.record(batch, row)?).map_err(avro_error))
            .collect()
    }

    fn record(&self, batch: &RecordBatch, row: usize) -> Result<Value, ConnectorError> {
        let fields = self
            .columns
            .iter()
            .zip(batch.columns())
            .map(|(column, array)| {
                let value = match array.is_null(row) {
                    true if column.nullable => {
                        return Ok((column.name.clone(), Value::Union(0, Box::new(Value::Null))));
                    }
                    true => {
                        return Err(avro_error(format!(
                            "column {} is NOT NULL but a row holds NULL",
                            column.name
                        )));
                    }
                    false => value_of(&column.kind, array.as_ref(), row)?,
                };
                let value = match column.nullable {
                    true => Value::Union(1, Box::new(value)),
                    false => value,
                };
                Ok((column.name.clone(), value))
            })
            .collect::<Result<_, ConnectorError>>()?;
        Ok(Value::Record(fields))
    }

    /// A container file's header: magic, metadata (schema, codec) and
    /// its sync marker.
    fn header(&self, sync: &[u8; 16]) -> Vec<u8> {
        let mut out = b"Obj\x01".to_vec();
        long(&mut out, 2);
        for (key, value) in [
            ("avro.schema", self.schema_json.as_bytes()),
            ("avro.codec", self.codec.name().as_bytes()),
        ] {
            long(&mut out, key.len() as i64);
            out.extend_from_slice(key.as_bytes());
            long(&mut out, value.len() as i64);
            out.extend_from_slice(value);
        }
        long(&mut out, 0);
        out.extend_from_slice(sync);
        out
    }
}

/// An Avro long: zigzag, then 7 bits a byte, low first.
fn long(out: &mut Vec<u8>, value: i64) {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn kind_of(name: &str, data_type: &DataType) -> Result<Kind, ConnectorError> {
    Ok(match data_type {
        DataType::Boolean => Kind::Boolean,
        DataType::Int8 => Kind::Int8,
        DataType::Int16 => Kind::Int16,
        DataType::Int32 => Kind::Int32,
        DataType::Int64 => Kind::Int64,
        DataType::Float32 => Kind::Float32,
        DataType::Float64 => Kind::Float64,
        DataType::Utf8 => Kind::String,
        DataType::Binary => Kind::Bytes,
        DataType::Decimal128(p, s) => Kind::Decimal(*p, *s),
        DataType::Date32 => Kind::Date,
        DataType::Timestamp(TimeUnit::Millisecond, tz) => Kind::Millis(tz.clone()),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => Kind::Micros(tz.clone()),
        other => {
            return Err(ConnectorError::Option(format!(
                "the avro format does not take column {name} of type {other} yet; it takes BOOLEAN, TINYINT to BIGINT, FLOAT, DOUBLE, STRING, BYTES, DECIMAL, DATE, TIMESTAMP(3|6) and TIMESTAMP_LTZ(3|6)"
            )));
        }
    })
}

/// The writer schema Flink's `AvroSchemaConverter` derives.
fn schema_json(columns: &[Column]) -> String {
    let fields: Vec<serde_json::Value> = columns
        .iter()
        .map(|column| {
            let plain = match &column.kind {
                Kind::Boolean => serde_json::json!("boolean"),
                Kind::Int8 | Kind::Int16 | Kind::Int32 => serde_json::json!("int"),
                Kind::Int64 => serde_json::json!("long"),
                Kind::Float32 => serde_json::json!("float"),
                Kind::Float64 => serde_json::json!("double"),
                Kind::String => serde_json::json!("string"),
                Kind::Bytes => serde_json::json!("bytes"),
                Kind::Decimal(p, s) => serde_json::json!({
                    "type": "bytes", "logicalType": "decimal", "precision": p, "scale": s
                }),
                Kind::Date => serde_json::json!({"type": "int", "logicalType": "date"}),
                Kind::Millis(_) => {
                    serde_json::json!({"type": "long", "logicalType": "timestamp-millis"})
                }
                Kind::Micros(_) => {
                    serde_json::json!({"type": "long", "logicalType": "timestamp-micros"})
                }
            };
            match column.nullable {
                true => serde_json::json!({
                    "name": column.name, "type": ["null", plain], "default": null
                }),
                false => serde_json::json!({"name": column.name, "type": plain}),
            }
        })
        .collect();
    serde_json::json!({
        "type": "record",
        "name": "record",
        "namespace": "org.apache.flink.avro.generated",
        "fields": fields,
    })
    .to_string()
}

fn value_of(kind: &Kind, array: &dyn Array, row: usize) -> Result<Value, ConnectorError> {
    Ok(match kind {
        Kind::Boolean => Value::Boolean(array.as_boolean().value(row)),
        Kind::Int8 => Value::Int(i32::from(array.as_primitive::<Int8Type>().value(row))),
        Kind::Int16 => Value::Int(i32::from(array.as_primitive::<Int16Type>().value(row))),
        Kind::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(row)),
        Kind::Int64 => Value::Long(array.as_primitive::<Int64Type>().value(row)),
        Kind::Float32 => Value::Float(array.as_primitive::<Float32Type>().value(row)),
        Kind::Float64 => Value::Double(array.as_primitive::<Float64Type>().value(row)),
        Kind::String => Value::String(array.as_string::<i32>().value(row).to_string()),
        Kind::Bytes => Value::Bytes(array.as_binary::<i32>().value(row).to_vec()),
        Kind::Decimal(..) => {
            let unscaled = array.as_primitive::<Decimal128Type>().value(row);
            Value::Decimal(Decimal::from(minimal_bytes(unscaled)))
        }
        Kind::Date => Value::Date(array.as_primitive::<Date32Type>().value(row)),
        Kind::Millis(_) => {
            Value::TimestampMillis(array.as_primitive::<TimestampMillisecondType>().value(row))
        }
        Kind::Micros(_) => {
            Value::TimestampMicros(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
    })
}

/// The unscaled value as Java's `BigInteger.toByteArray` writes it: big
/// endian two's complement in as few bytes as keep the sign.
fn minimal_bytes(value: i128) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let sign = if value < 0 { 0xff } else { 0 };
    let mut start = 0;
    while start < 15 && bytes[start] == sign && (bytes[start + 1] & 0x80) == (sign & 0x80) {
        start += 1;
    }
    bytes[start..].to_vec()
}

fn from_bytes(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(full))
}

pub struct Decoder {
    format: AvroFormat,
    schema: SchemaRef,
}

impl Decoder {
    /// One row per message (an Avro datum).
    pub fn decode_messages<'a>(
        &mut self,
        messages: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Vec<RecordBatch>, ConnectorError> {
        let mut out = Vec::new();
        let mut builders = self.builders();
        let mut rows = 0;
        for message in messages {
            let mut reader = message;
            let value = from_avro_datum(&self.format.schema, &mut reader, None).map_err(|e| {
                avro_error(format!(
                    "a message is not a record of the table's schema: {e}"
                ))
            })?;
            // The decoder reads a string or bytes cut short as a null, so
            // the value is held to the schema again.
            if !value.validate(&self.format.schema) {
                return Err(avro_error(
                    "a message is not a record of the table's schema (it ends too soon)",
                ));
            }
            if !reader.is_empty() {
                return Err(avro_error(format!(
                    "a message has {} bytes after the record of the table's schema",
                    reader.len()
                )));
            }
            let Value::Record(fields) = value else {
                return Err(avro_error("a message is not a record"));
            };
            for ((builder, column), (_, value)) in builders
                .iter_mut()
                .zip(self.format.columns.iter())
                .zip(fields)
            {
                builder.append(column, value)?;
            }
            rows += 1;
            if rows == BATCH_ROWS {
                out.push(self.finish(&mut builders)?);
                rows = 0;
            }
        }
        if rows > 0 {
            out.push(self.finish(&mut builders)?);
        }
        Ok(out)
    }

    fn builders(&self) -> Vec<Builder> {
        self.format
            .columns
            .iter()
            .map(|c| Builder::new(&c.kind))
            .collect()
    }

    fn finish(&self, builders: &mut [Builder]) -> Result<RecordBatch, ConnectorError> {
        let columns: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

enum Builder {
    Boolean(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    String(StringBuilder),
    Bytes(BinaryBuilder),
    Decimal(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    Millis(TimestampMillisecondBuilder, Option<Arc<str>>),
    Micros(TimestampMicrosecondBuilder, Option<Arc<str>>),
}

impl Builder {
    fn new(kind: &Kind) -> Builder {
        match kind {
            Kind::Boolean => Builder::Boolean(BooleanBuilder::new()),
            Kind::Int8 => Builder::Int8(Int8Builder::new()),
            Kind::Int16 => Builder::Int16(Int16Builder::new()),
            Kind::Int32 => Builder::Int32(Int32Builder::new()),
            Kind::Int64 => Builder::Int64(Int64Builder::new()),
            Kind::Float32 => Builder::Float32(Float32Builder::new()),
            Kind::Float64 => Builder::Float64(Float64Builder::new()),
            Kind::String => Builder::String(StringBuilder::new()),
            Kind::Bytes => Builder::Bytes(BinaryBuilder::new()),
            Kind::Decimal(p, s) => Builder::Decimal(Decimal128Builder::new(), *p, *s),
            Kind::Date => Builder::Date(Date32Builder::new()),
            Kind::Millis(tz) => Builder::Millis(TimestampMillisecondBuilder::new(), tz.clone()),
            Kind::Micros(tz) => Builder::Micros(TimestampMicrosecondBuilder::new(), tz.clone()),
        }
    }

    /// Appends a decoded field; the schema already held it to its type.
    fn append(&mut self, column: &Column, value: Value) -> Result<(), ConnectorError> {
        let value = match value {
            Value::Union(_, inner) => *inner,
            value => value,
        };
        let mismatch = |value: &Value| avro_error(format!("column {} got {value:?}", column.name));
        match (self, value) {
            (Builder::Boolean(b), Value::Null) => b.append_null(),
            (Builder::Int8(b), Value::Null) => b.append_null(),
            (Builder::Int16(b), Value::Null) => b.append_null(),
            (Builder::Int32(b), Value::Null) => b.append_null(),
            (Builder::Int64(b), Value::Null) => b.append_null(),
            (Builder::Float32(b), Value::Null) => b.append_null(),
            (Builder::Float64(b), Value::Null) => b.append_null(),
            (Builder::String(b), Value::Null) => b.append_null(),
            (Builder::Bytes(b), Value::Null) => b.append_null(),
            (Builder::Decimal(b, ..), Value::Null) => b.append_null(),
            (Builder::Date(b), Value::Null) => b.append_null(),
            (Builder::Millis(b, _), Value::Null) => b.append_null(),
            (Builder::Micros(b, _), Value::Null) => b.append_null(),
            (Builder::Boolean(b), Value::Boolean(v)) => b.append_value(v),
            // Flink reads an int into a TINYINT or SMALLINT by narrowing.
            (Builder::Int8(b), Value::Int(v)) => b.append_value(v as i8),
            (Builder::Int16(b), Value::Int(v)) => b.append_value(v as i16),
            (Builder::Int32(b), Value::Int(v)) => b.append_value(v),
            (Builder::Int64(b), Value::Long(v)) => b.append_value(v),
            (Builder::Float32(b), Value::Float(v)) => b.append_value(v),
            (Builder::Float64(b), Value::Double(v)) => b.append_value(v),
            (Builder::String(b), Value::String(v)) => b.append_value(v),
            (Builder::Bytes(b), Value::Bytes(v)) => b.append_value(v),
            (Builder::Decimal(b, p, _), Value::Decimal(v)) => {
                let bytes = Vec::<u8>::try_from(&v).map_err(avro_error)?;
                let unscaled = from_bytes(&bytes)
                    .filter(|u| u.unsigned_abs() < 10u128.pow(u32::from(*p)))
                    .ok_or_else(|| {
                        avro_error(format!(
                            "column {}: a decimal of {} bytes does not fit DECIMAL({p})",
                            column.name,
                            bytes.len()
                        ))
                    })?;
                b.append_value(unscaled);
            }
            (Builder::Date(b), Value::Date(v)) => b.append_value(v),
            (Builder::Millis(b, _), Value::TimestampMillis(v)) => b.append_value(v),
            (Builder::Micros(b, _), Value::TimestampMicros(v)) => b.append_value(v),
            (_, value) => return Err(mismatch(&value)),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Boolean(b) => Arc::new(b.finish()),
            Builder::Int8(b) => Arc::new(b.finish()),
            Builder::Int16(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float32(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::String(b) => Arc::new(b.finish()),
            Builder::Bytes(b) => Arc::new(b.finish()),
            Builder::Decimal(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .unwrap_or_else(|_| Decimal128Builder::new().finish()),
            ),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Millis(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            Builder::Micros(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
        }
    }
}

/// A part file in Avro's object container format: the header at
/// creation, then blocks of rows, each compressed with the codec and
/// followed by the sync marker.
pub struct AvroFile<W: Write> {
    out: W,
    format: AvroFormat,
    sync: [u8; 16],
    block: Vec<u8>,
    rows: i64,
}

impl<W: Write> AvroFile<W> {
    pub fn new(mut out: W, format: &AvroFormat) -> Result<Self, ConnectorError> {
        let sync = sync_marker();
        out.write_all(&format.header(&sync))
            .map_err(|e| avro_error(e.to_string()))?;
        Ok(AvroFile {
            out,
            format: format.clone(),
            sync,
            block: Vec::new(),
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        for row in 0..batch.num_rows() {
            let datum = to_avro_datum(&self.format.schema, self.format.record(batch, row)?)
                .map_err(avro_error)?;
            self.block.extend_from_slice(&datum);
            self.rows += 1;
            if self.block.len() >= BLOCK_BYTES {
                self.end_block()?;
            }
        }
        Ok(())
    }

    fn end_block(&mut self) -> Result<(), ConnectorError> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut data = std::mem::take(&mut self.block);
        self.format
            .codec
            .codec()
            .compress(&mut data)
            .map_err(avro_error)?;
        let mut head = Vec::with_capacity(20);
        long(&mut head, self.rows);
        long(&mut head, data.len() as i64);
        let io = |e: std::io::Error| avro_error(e.to_string());
        self.out.write_all(&head).map_err(io)?;
        self.out.write_all(&data).map_err(io)?;
        self.out.write_all(&self.sync).map_err(io)?;
        self.rows = 0;
        Ok(())
    }

    /// Writes the last block; the writer, for the caller to sync.
    pub fn finish(&mut self) -> Result<&mut W, ConnectorError> {
        self.end_block()?;
        self.out.flush().map_err(|e| avro_error(e.to_string()))?;
        Ok(&mut self.out)
    }
}

/// Sixteen bytes no other file is likely to have: the marker tells a
/// reader where blocks end.
fn sync_marker() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut marker = [0u8; 16];
    for (i, half) in marker.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(i);
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    marker
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
        Int8Array, Int16Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
        TimestampMillisecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema as ArrowSchema};
    use std::collections::BTreeMap;

    fn format(schema: &SchemaRef, codec: &str) -> AvroFormat {
        let options: BTreeMap<String, String> = [("format", "avro"), ("avro.codec", codec)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AvroFormat::from_options(&Options::new(options), schema).unwrap()
    }

    /// Every column kind, with a NULL in each nullable one.
    fn every_kind() -> RecordBatch {
        let utc: Arc<str> = "UTC".into();
        let fields = vec![
            Field::new("b", DataType::Boolean, true),
            Field::new("i8", DataType::Int8, true),
            Field::new("i16", DataType::Int16, true),
            Field::new("i32", DataType::Int32, false),
            Field::new("i64", DataType::Int64, true),
            Field::new("f32", DataType::Float32, true),
            Field::new("f64", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("bytes", DataType::Binary, true),
            Field::new("d", DataType::Decimal128(20, 3), true),
            Field::new("day", DataType::Date32, true),
            Field::new("ms", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new(
                "us",
                DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone())),
                true,
            ),
        ];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(vec![Some(true), None])),
            Arc::new(Int8Array::from(vec![Some(-8), None])),
            Arc::new(Int16Array::from(vec![Some(-1600), None])),
            Arc::new(Int32Array::from(vec![32, -32])),
            Arc::new(Int64Array::from(vec![Some(i64::MIN), None])),
            Arc::new(Float32Array::from(vec![Some(1.5), None])),
            Arc::new(Float64Array::from(vec![Some(-2.25), None])),
            Arc::new(StringArray::from(vec![Some("héllo"), None])),
            Arc::new(BinaryArray::from(vec![Some(&b"\0\xff"[..]), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(-12_345_678_901_234_567), None])
                    .with_precision_and_scale(20, 3)
                    .unwrap(),
            ),
            Arc::new(Date32Array::from(vec![Some(20_000), None])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_700_000_000_123),
                None,
            ])),
            Arc::new(TimestampMicrosecondArray::from(vec![Some(-1), None]).with_timezone(utc)),
        ];
        RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), columns).unwrap()
    }

    #[test]
    fn every_kind_round_trips_through_records() {
        let batch = every_kind();
        let avro = format(&batch.schema(), "snappy");
        let messages = avro.encode_messages(&batch).unwrap();
        assert_eq!(messages.len(), 2);
        let decoded = avro
            .decoder(batch.schema())
            .decode_messages(messages.iter().map(Vec::as_slice))
            .unwrap();
        assert_eq!(decoded, vec![batch]);
    }

    #[test]
    fn a_record_is_avros_binary_encoding_under_flinks_schema() {
        let schema = Arc::new(ArrowSchema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, -2])),
                Arc::new(StringArray::from(vec![Some("ab"), None])),
            ],
        )
        .unwrap();
        let avro = format(&schema, "null");
        assert_eq!(
            avro.schema_json,
            r#"{"fields":[{"name":"id","type":"long"},{"default":null,"name":"name","type":["null","string"]}],"name":"record","namespace":"org.apache.flink.avro.generated","type":"record"}"#
        );
        // long 1 (zigzag 2); union branch 1, string of 2 bytes; long -2
        // (zigzag 3); union branch 0 (null).
        assert_eq!(
            avro.encode_messages(&batch).unwrap(),
            vec![vec![2, 2, 4, b'a', b'b'], vec![3, 0]]
        );
        let mut decoder = avro.decoder(schema);
        let short = decoder.decode_messages([&[2u8, 2, 4, b'a'][..]].into_iter());
        assert!(short.unwrap_err().to_string().contains("not a record"));
        let long = decoder.decode_messages([&[3u8, 0, 9][..]].into_iter());
        assert!(
            long.unwrap_err()
                .to_string()
                .contains("1 bytes after the record")
        );
    }

    #[test]
    fn container_files_are_read_by_the_apache_avro_reader_with_each_codec() {
        let batch = every_kind();
        for codec in ["null", "deflate", "snappy"] {
            let avro = format(&batch.schema(), codec);
            let mut file = AvroFile::new(Vec::new(), &avro).unwrap();
            for _ in 0..3000 {
                file.write(&batch).unwrap();
            }
            let bytes = file.finish().unwrap().clone();
            let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
            let values: Vec<Value> = reader.map(Result::unwrap).collect();
            assert_eq!(values.len(), 6000, "{codec}");
            let Value::Record(first) = &values[0] else {
                panic!("{codec}: not a record");
            };
            assert_eq!(first[3], ("i32".to_string(), Value::Int(32)), "{codec}");
            let messages: Vec<Vec<u8>> = values[..2]
                .iter()
                .map(|v| to_avro_datum(&avro.schema, v.clone()).unwrap())
                .collect();
            let decoded = avro
                .decoder(batch.schema())
                .decode_messages(messages.iter().map(Vec::as_slice))
                .unwrap();
            assert_eq!(decoded, vec![batch.clone()], "{codec}");
        }
    }

    proptest::proptest! {
        /// Any bytes: an error or rows, never a panic.
        #[test]
        fn arbitrary_messages_never_panic(messages in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 1..8)) {
            let batch = every_kind();
            let avro = format(&batch.schema(), "null");
            let _ = avro
                .decoder(batch.schema())
                .decode_messages(messages.iter().map(Vec::as_slice));
        }

        /// A valid record with bytes flipped or cut: an error or rows of
        /// the schema, never a panic.
        #[test]
        fn damaged_records_never_panic(at in 0usize..200, byte in proptest::prelude::any::<u8>(),
                                       cut in proptest::prelude::any::<bool>()) {
            let batch = every_kind();
            let avro = format(&batch.schema(), "null");
            let mut message = avro.encode_messages(&batch).unwrap().remove(0);
            let at = at % message.len();
            if cut { message.truncate(at) } else { message[at] = byte }
            if let Ok(batches) = avro.decoder(batch.schema()).decode_messages(std::iter::once(&message[..])) {
                for decoded in batches {
                    proptest::prop_assert_eq!(decoded.schema(), batch.schema());
                }
            }
        }
    }

    #[test]
    fn a_type_avro_cannot_hold_here_is_refused_by_name() {
        let schema = Arc::new(ArrowSchema::new(vec![Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        )]));
        let options = Options::new(
            [("format".to_string(), "avro".to_string())]
                .into_iter()
                .collect(),
        );
        let error = AvroFormat::from_options(&options, &schema).unwrap_err();
        assert!(error.to_string().contains("column tags"), "{error}");
    }

    #[test]
    fn decimals_are_written_in_as_few_bytes_as_java_writes_them() {
        for (value, bytes) in [
            (0i128, vec![0u8]),
            (1, vec![1]),
            (127, vec![127]),
            (128, vec![0, 128]),
            (-1, vec![0xff]),
            (-128, vec![0x80]),
            (-129, vec![0xff, 0x7f]),
            (12_345, vec![0x30, 0x39]),
        ] {
            assert_eq!(minimal_bytes(value), bytes, "{value}");
            assert_eq!(from_bytes(&bytes), Some(value));
        }
        assert_eq!(from_bytes(&minimal_bytes(i128::MIN)), Some(i128::MIN));
    }

    #[test]
    fn longs_are_zigzag_varints() {
        for (value, bytes) in [
            (0i64, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            long(&mut out, value);
            assert_eq!(out, bytes, "{value}");
        }
    }
}
