//! Values as Flink's print connector shows them (Java's `toString`).

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, TimeUnit};
use datafusion::arrow::util::display::array_value_to_string;

pub fn value(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "null".to_string();
    }
    match array.data_type() {
        DataType::Float64 => java_double(array.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => java_double(array.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Timestamp(TimeUnit::Millisecond, None) => {
            let millis = array
                .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                .value(row);
            local_date_time(millis)
        }
        _ => array_value_to_string(array, row).unwrap_or_else(|e| format!("<{e}>")),
    }
}

/// `1.0`, `0.5`, `1.0E10`: Java prints a fraction on whole doubles.
fn java_double(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        format!("{v}")
    }
}

/// Java's `LocalDateTime.toString`: seconds and millis only when non-zero.
fn local_date_time(millis: i64) -> String {
    let Some(time) = chrono::DateTime::from_timestamp_millis(millis) else {
        return millis.to_string();
    };
    let time = time.naive_utc();
    let ms = millis.rem_euclid(1000);
    use chrono::Timelike;
    if ms != 0 {
        time.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
    } else if time.second() != 0 {
        time.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        time.format("%Y-%m-%dT%H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_like_java_local_date_time() {
        assert_eq!(local_date_time(0), "1970-01-01T00:00");
        assert_eq!(local_date_time(5_000), "1970-01-01T00:00:05");
        assert_eq!(local_date_time(5_120), "1970-01-01T00:00:05.120");
    }

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(2.5), "2.5");
    }
}
