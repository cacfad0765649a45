//! The `datagen` connector, with Flink's options: `rows-per-second`,
//! `number-of-rows`, and per field `fields.<f>.kind` (`random` or
//! `sequence`), `.min`/`.max`, `.length`, `.start`/`.end`, `.max-past`.
//!
//! Each worker's random values come from its own generator with a fixed
//! seed, so a checkpoint's position (the worker's next row number and its
//! generator's state) makes a restored reader give exactly the rows an
//! uninterrupted one would: the same sequence values and the same random
//! ones. Random timestamps are the wall clock less a random `max-past`,
//! so those are new ones after a restore, as any run's are.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Int64Array, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use runnel_engine::EngineError;
use runnel_engine::connector::SourceProvider;
use runnel_engine::source::{BatchReader, Poll};

use crate::ConnectorError;
use crate::format::BATCH_ROWS;
use crate::options::Options;

const DEFAULT_ROWS_PER_SECOND: f64 = 10_000.0;
const DEFAULT_STRING_LENGTH: usize = 100;

#[derive(Debug, Clone)]
enum Kind {
    Random {
        min: f64,
        max: f64,
        length: usize,
        max_past: i64,
    },
    Sequence {
        start: i64,
    },
}

#[derive(Clone)]
pub struct Datagen {
    schema: SchemaRef,
    kinds: Vec<Kind>,
    rows_per_second: Option<f64>,
    rows: Option<u64>,
}

impl Datagen {
    pub fn new(options: &Options, schema: SchemaRef) -> Result<Self, ConnectorError> {
        let rows_per_second = match options.get("rows-per-second") {
            None => Some(DEFAULT_ROWS_PER_SECOND),
            Some(v) => {
                let rate: f64 = v.parse().map_err(|_| {
                    ConnectorError::Option(format!("rows-per-second must be a number, got '{v}'"))
                })?;
                // Flink treats a non-positive rate as unthrottled.
                (rate > 0.0).then_some(rate)
            }
        };
        let mut rows = options.u64("number-of-rows")?;
        let mut kinds = Vec::new();
        for field in schema.fields() {
            let key = |suffix: &str| format!("fields.{}.{suffix}", field.name());
            let number = |suffix: &str, default: f64| -> Result<f64, ConnectorError> {
                match options.get(&key(suffix)) {
                    None => Ok(default),
                    Some(v) => v.parse().map_err(|_| {
                        ConnectorError::Option(format!(
                            "{} must be a number, got '{v}'",
                            key(suffix)
                        ))
                    }),
                }
            };
            let kind = match options.get(&key("kind")).unwrap_or("random") {
                "random" => {
                    let (min, max) = default_range(field.data_type());
                    Kind::Random {
                        min: number("min", min)?,
                        max: number("max", max)?,
                        length: number("length", DEFAULT_STRING_LENGTH as f64)? as usize,
                        max_past: number("max-past", 0.0)? as i64,
                    }
                }
                "sequence" => {
                    let start = options.get(&key("start")).ok_or_else(|| {
                        ConnectorError::Option(format!(
                            "{} is required for a sequence",
                            key("start")
                        ))
                    })?;
                    let end = options.get(&key("end")).ok_or_else(|| {
                        ConnectorError::Option(format!("{} is required for a sequence", key("end")))
                    })?;
                    let parse = |v: &str| {
                        v.parse::<i64>().map_err(|_| {
                            ConnectorError::Option(format!(
                                "sequence bounds must be integers, got '{v}'"
                            ))
                        })
                    };
                    let (start, end) = (parse(start)?, parse(end)?);
                    if end < start {
                        return Err(ConnectorError::Option(format!(
                            "{} is before {}",
                            key("end"),
                            key("start")
                        )));
                    }
                    // A sequence ends the source once exhausted, as in Flink.
                    let count = (end - start + 1) as u64;
                    rows = Some(rows.map_or(count, |r| r.min(count)));
                    Kind::Sequence { start }
                }
                other => {
                    return Err(ConnectorError::Option(format!(
                        "{} must be random or sequence, got '{other}'",
                        key("kind")
                    )));
                }
            };
            if !supported(field.data_type()) {
                return Err(ConnectorError::Option(format!(
                    "datagen cannot generate {} of type {}",
                    field.name(),
                    field.data_type()
                )));
            }
            kinds.push(kind);
        }
        Ok(Datagen {
            schema,
            kinds,
            rows_per_second,
            rows,
        })
    }
}

fn supported(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::Timestamp(TimeUnit::Millisecond, _)
    )
}

fn default_range(data_type: &DataType) -> (f64, f64) {
    match data_type {
        DataType::Int8 => (i8::MIN as f64, i8::MAX as f64),
        DataType::Int16 => (i16::MIN as f64, i16::MAX as f64),
        DataType::Int32 => (i32::MIN as f64, i32::MAX as f64),
        DataType::Float32 | DataType::Float64 => (f32::MIN as f64, f32::MAX as f64),
        _ => (i64::MIN as f64, i64::MAX as f64),
    }
}

impl SourceProvider for Datagen {
    fn reader(&self, worker: usize, peers: usize) -> Result<Box<dyn BatchReader>, EngineError> {
        Ok(Box::new(DatagenReader {
            spec: self.clone(),
            next: worker as u64,
            step: peers.max(1) as u64,
            emitted: 0,
            started: Instant::now(),
            rate: self.rows_per_second.map(|r| r / peers.max(1) as f64),
            state: 0x9E37_79B9_7F4A_7C15 ^ ((worker as u64 + 1) << 32),
        }))
    }

    fn checkpointable(&self) -> bool {
        true
    }
}

/// The version byte of a datagen reader's position, which is then its
/// next row number and its generator's state, each a little-endian `u64`.
const POSITION_VERSION: u8 = 1;

struct DatagenReader {
    spec: Datagen,
    /// Global index of this worker's next row; workers interleave.
    next: u64,
    step: u64,
    /// Rows given since `started`, for `rate`: a restored reader keeps
    /// the rate from its restore on, not from the job's first start.
    emitted: u64,
    started: Instant,
    rate: Option<f64>,
    state: u64,
}

impl DatagenReader {
    fn random(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn unit(&mut self) -> f64 {
        (self.random() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl BatchReader for DatagenReader {
    fn poll(&mut self) -> Result<Poll, EngineError> {
        let mut n = BATCH_ROWS as u64;
        if let Some(total) = self.spec.rows {
            if self.next >= total {
                return Ok(Poll::Done);
            }
            n = n.min((total - self.next).div_ceil(self.step));
        }
        if let Some(rate) = self.rate {
            let allowed = (rate * self.started.elapsed().as_secs_f64()) as u64;
            let ahead = allowed.saturating_sub(self.emitted);
            if ahead == 0 {
                return Ok(Poll::Idle);
            }
            n = n.min(ahead);
        }
        let indices: Vec<u64> = (0..n).map(|i| self.next + i * self.step).collect();
        self.next += n * self.step;
        self.emitted += n;
        let now = runnel_engine::time::wall_clock_millis();
        let schema = self.spec.schema.clone();
        let kinds = self.spec.kinds.clone();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(kinds.len());
        for (field, kind) in schema.fields().iter().zip(&kinds) {
            let values: Vec<f64> = match kind {
                Kind::Sequence { start, .. } => indices
                    .iter()
                    .map(|&i| (*start + i as i64) as f64)
                    .collect(),
                Kind::Random { min, max, .. } => {
                    (0..n).map(|_| min + self.unit() * (max - min)).collect()
                }
            };
            let ints = || -> Vec<i64> {
                match kind {
                    Kind::Sequence { start, .. } => {
                        indices.iter().map(|&i| *start + i as i64).collect()
                    }
                    _ => values.iter().map(|v| *v as i64).collect(),
                }
            };
            let column: ArrayRef = match field.data_type() {
                DataType::Boolean => Arc::new(BooleanArray::from(
                    values
                        .iter()
                        .map(|v| v.to_bits() & 1 == 1)
                        .collect::<Vec<_>>(),
                )),
                DataType::Int8 => Arc::new(Int8Array::from(
                    ints().into_iter().map(|v| v as i8).collect::<Vec<_>>(),
                )),
                DataType::Int16 => Arc::new(Int16Array::from(
                    ints().into_iter().map(|v| v as i16).collect::<Vec<_>>(),
                )),
                DataType::Int32 => Arc::new(Int32Array::from(
                    ints().into_iter().map(|v| v as i32).collect::<Vec<_>>(),
                )),
                DataType::Int64 => Arc::new(Int64Array::from(ints())),
                DataType::Float32 => Arc::new(Float32Array::from(
                    values.iter().map(|v| *v as f32).collect::<Vec<_>>(),
                )),
                DataType::Float64 => Arc::new(Float64Array::from(values)),
                DataType::Utf8 => {
                    let strings: Vec<String> = match kind {
                        Kind::Sequence { .. } => ints().iter().map(i64::to_string).collect(),
                        Kind::Random { length, .. } => {
                            (0..n).map(|_| random_string(self, *length)).collect()
                        }
                    };
                    Arc::new(StringArray::from(strings))
                }
                DataType::Timestamp(TimeUnit::Millisecond, zone) => {
                    let times: Vec<i64> = match kind {
                        Kind::Sequence { .. } => ints(),
                        Kind::Random { max_past, .. } => (0..n)
                            .map(|_| now - (self.unit() * *max_past as f64) as i64)
                            .collect(),
                    };
                    Arc::new(TimestampMillisecondArray::from(times).with_timezone_opt(zone.clone()))
                }
                other => {
                    return Err(EngineError::Plan(format!(
                        "datagen cannot generate {other}"
                    )));
                }
            };
            columns.push(column);
        }
        Ok(Poll::Batch(RecordBatch::try_new(schema, columns)?))
    }

    fn checkpoint_position(&mut self) -> Result<Option<Vec<u8>>, EngineError> {
        let mut position = vec![POSITION_VERSION];
        position.extend_from_slice(&self.next.to_le_bytes());
        position.extend_from_slice(&self.state.to_le_bytes());
        Ok(Some(position))
    }

    fn restore_position(&mut self, position: &[u8]) -> Result<(), EngineError> {
        let corrupt = |what: &str| EngineError::Connector {
            connector: "datagen",
            message: format!("checkpoint position is corrupt: {what}"),
        };
        let [POSITION_VERSION, rest @ ..] = position else {
            return Err(corrupt("an unknown version"));
        };
        let (Some(next), Some(state)) = (
            rest.get(..8).and_then(|b| b.try_into().ok()),
            rest.get(8..16).and_then(|b| b.try_into().ok()),
        ) else {
            return Err(corrupt("truncated"));
        };
        if rest.len() != 16 {
            return Err(corrupt("trailing bytes"));
        }
        let next = u64::from_le_bytes(next);
        // Workers interleave rows: a position of another worker (or of
        // another worker count) would repeat or skip rows.
        if next % self.step != self.next % self.step {
            return Err(corrupt("another worker's row number"));
        }
        // A xorshift state of zero stays zero.
        let state = u64::from_le_bytes(state);
        if state == 0 {
            return Err(corrupt("a zero generator state"));
        }
        self.next = next;
        self.state = state;
        self.emitted = 0;
        self.started = Instant::now();
        Ok(())
    }
}

fn random_string(reader: &mut DatagenReader, length: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..length)
        .map(|_| HEX[(reader.random() & 15) as usize] as char)
        .collect()
}

pub fn source(
    options: &Options,
    schema: SchemaRef,
) -> Result<Arc<dyn SourceProvider>, ConnectorError> {
    Ok(Arc::new(Datagen::new(options, schema)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Field, Int64Type, Schema};
    use std::time::Duration;

    fn provider(options: &[(&str, &str)]) -> Datagen {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("v", DataType::Int32, false),
        ]));
        let options = Options::new(
            options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        Datagen::new(&options, schema).unwrap()
    }

    fn drain(reader: &mut dyn BatchReader) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            match reader.poll().unwrap() {
                Poll::Batch(b) => out.push(b),
                Poll::Idle => std::thread::sleep(Duration::from_millis(1)),
                Poll::Done => return out,
            }
        }
        panic!("datagen did not finish");
    }

    #[test]
    fn a_sequence_is_split_across_workers_without_gaps_or_repeats() {
        let generator = provider(&[
            ("rows-per-second", "0"),
            ("fields.id.kind", "sequence"),
            ("fields.id.start", "1"),
            ("fields.id.end", "20000"),
            ("fields.v.min", "5"),
            ("fields.v.max", "9"),
        ]);
        let mut ids = Vec::new();
        for worker in 0..3 {
            for batch in drain(generator.reader(worker, 3).unwrap().as_mut()) {
                ids.extend(
                    batch
                        .column(0)
                        .as_primitive::<Int64Type>()
                        .values()
                        .iter()
                        .copied(),
                );
                let v = batch
                    .column(1)
                    .as_primitive::<datafusion::arrow::datatypes::Int32Type>();
                assert!(v.values().iter().all(|x| (5..=9).contains(x)));
            }
        }
        ids.sort();
        assert_eq!(ids, (1..=20000).collect::<Vec<i64>>());
    }

    #[test]
    fn rows_per_second_throttles() {
        let generator = provider(&[("rows-per-second", "2000"), ("number-of-rows", "200")]);
        let started = Instant::now();
        let rows: usize = drain(generator.reader(0, 1).unwrap().as_mut())
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 200);
        assert!(
            started.elapsed() >= Duration::from_millis(90),
            "200 rows at 2000/s took {:?}",
            started.elapsed()
        );
    }
}
