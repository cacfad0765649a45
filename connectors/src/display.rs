//! Values as Flink's print connector shows them (Java's `toString`).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Float32Type, Float64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::util::display::array_value_to_string;

pub fn value(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "null".to_string();
    }
    match array.data_type() {
        DataType::Float64 => java_double(array.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => java_float(array.as_primitive::<Float32Type>().value(row)),
        DataType::Decimal128(_, scale) => {
            runnel_timefmt::java_decimal(array.as_primitive::<Decimal128Type>().value(row), *scale)
        }
        DataType::Timestamp(unit, zone) => {
            let value = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(row)
                }
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
            };
            match zone {
                None => local_date_time(value, unit),
                // A TIMESTAMP_LTZ prints as Java's Instant: UTC, seconds always.
                Some(_) => instant(value, unit),
            }
        }
        // BYTES as Java's Arrays.toString of a byte[]: signed, `[97, -1]`.
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let bytes: &[u8] = match array.data_type() {
                DataType::Binary => array.as_binary::<i32>().value(row),
                DataType::LargeBinary => array.as_binary::<i64>().value(row),
                _ => array.as_binary_view().value(row),
            };
            let values: Vec<String> = bytes.iter().map(|&b| (b as i8).to_string()).collect();
            format!("[{}]", values.join(", "))
        }
        // Java's List and array toString: `[1, null, 3]`.
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            elements(list.as_ref())
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>().value(row);
            elements(list.as_ref())
        }
        // Java's Map toString: `{a=1, b=2}`.
        DataType::Map(_, _) => {
            let entries = array.as_map().value(row);
            let keys = entries.column(0);
            let values = entries.column(1);
            let pairs: Vec<String> = (0..entries.len())
                .map(|i| format!("{}={}", value(keys, i), value(values, i)))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        }
        // A nested ROW prints as Flink's Row does.
        DataType::Struct(_) => {
            let fields = array.as_struct();
            let values: Vec<String> = fields
                .columns()
                .iter()
                .map(|c| value(c.as_ref(), row))
                .collect();
            format!("+I[{}]", values.join(", "))
        }
        _ => array_value_to_string(array, row).unwrap_or_else(|e| format!("<{e}>")),
    }
}

fn elements(list: &dyn Array) -> String {
    let values: Vec<String> = (0..list.len()).map(|i| value(list, i)).collect();
    format!("[{}]", values.join(", "))
}

pub use runnel_timefmt::{java_double, java_float};

/// Java's `Instant.toString`: `2020-04-15T08:05:30Z`, `...30.123Z`.
fn instant(value: i64, unit: &TimeUnit) -> String {
    let text = local_date_time(value, unit);
    // LocalDateTime leaves out zero seconds; Instant always has them.
    if text.len() == "1970-01-01T00:00".len() {
        format!("{text}:00Z")
    } else {
        format!("{text}Z")
    }
}

/// Java's `LocalDateTime.toString`: seconds only when there is a second or
/// a fraction, the fraction in groups of three digits as needed.
fn local_date_time(value: i64, unit: &TimeUnit) -> String {
    let (per_second, digits) = match unit {
        TimeUnit::Second => (1, 0),
        TimeUnit::Millisecond => (1_000, 3),
        TimeUnit::Microsecond => (1_000_000, 6),
        TimeUnit::Nanosecond => (1_000_000_000, 9),
    };
    let seconds = value.div_euclid(per_second);
    let fraction = value.rem_euclid(per_second);
    let nanos = fraction * (1_000_000_000 / per_second);
    let Some(time) = chrono::DateTime::from_timestamp(seconds, nanos as u32) else {
        return value.to_string();
    };
    let time = time.naive_utc();
    use chrono::Timelike;
    let mut text = time.format("%Y-%m-%dT%H:%M").to_string();
    if time.second() != 0 || nanos != 0 {
        text.push_str(&format!(":{:02}", time.second()));
    }
    if nanos != 0 && digits > 0 {
        let shown = if nanos % 1_000_000 == 0 {
            3
        } else if nanos % 1_000 == 0 {
            6
        } else {
            9
        };
        text.push_str(&format!(".{:09}", nanos)[..=shown]);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_like_java_local_date_time() {
        let ms = &TimeUnit::Millisecond;
        assert_eq!(local_date_time(0, ms), "1970-01-01T00:00");
        assert_eq!(local_date_time(5_000, ms), "1970-01-01T00:00:05");
        assert_eq!(local_date_time(5_120, ms), "1970-01-01T00:00:05.120");
        assert_eq!(
            local_date_time(5_000_120_000, &TimeUnit::Nanosecond),
            "1970-01-01T00:00:05.000120"
        );
        assert_eq!(local_date_time(-1, ms), "1969-12-31T23:59:59.999");
    }

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(2.5), "2.5");
        assert_eq!(java_double(1e10), "1.0E10");
        assert_eq!(java_double(1.5e-4), "1.5E-4");
        assert_eq!(java_double(1234567.5), "1234567.5");
        assert_eq!(java_double(12345678.5), "1.23456785E7");
        assert_eq!(java_double(0.001), "0.001");
    }
}
