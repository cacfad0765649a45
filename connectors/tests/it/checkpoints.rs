//! Checkpoints, with the test playing the engine's part: a reader's
//! position restored into a fresh reader continues exactly where the
//! first one stood (filesystem, datagen, nexmark), and the file sink of a
//! checkpointed job shows part files only once their checkpoint is
//! complete, committing and cleaning up after a crash.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use runnel_connectors::datagen::Datagen;
use runnel_connectors::filesystem::{FileSink, FileSource, STATE_KIND};
use runnel_connectors::nexmark::Nexmark;
use runnel_connectors::options::Options;
use runnel_engine::checkpoint::Mode;
use runnel_engine::checkpoint::worker;
use runnel_engine::connector::{PARTITION_KEYS, SinkProvider, SourceProvider};
use runnel_engine::source::{BatchReader, Poll};

fn options(pairs: &[(&str, &str)]) -> Options {
    Options::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// Makes this test's thread a worker of a checkpointed job, for as long as
/// the guard lives; `restore` is its share of the checkpoint resumed from.
struct Checkpointed;

impl Checkpointed {
    fn install(restore: Option<Vec<(String, Vec<u8>)>>) -> Self {
        let whole = |states: Vec<(String, Vec<u8>)>| {
            states
                .into_iter()
                .map(|(id, state)| (id, vec![state]))
                .collect()
        };
        worker::install(Mode::ExactlyOnce, restore.map(whole));
        Checkpointed
    }
}

impl Drop for Checkpointed {
    fn drop(&mut self) {
        worker::uninstall();
    }
}

/// Every batch until the reader is done; bounded readers only.
fn drain(reader: &mut dyn BatchReader) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        match reader.poll().unwrap() {
            Poll::Batch(batch) => out.push(batch),
            Poll::Idle => std::thread::yield_now(),
            Poll::Done => return out,
        }
    }
    panic!("the reader did not finish");
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// For every number of batches `k` a reader may have given: the position
/// it gives then, restored into a fresh reader, yields exactly what the
/// first reader still yields. Returns how many batches a whole read gives.
fn resumes_exactly(make: &dyn Fn() -> Box<dyn BatchReader>) -> usize {
    let whole = drain(make().as_mut());
    for k in 0..=whole.len() {
        let mut first = make();
        for _ in 0..k {
            assert!(matches!(first.poll().unwrap(), Poll::Batch(_)));
        }
        let position = first.checkpoint_position().unwrap().unwrap();
        let mut restored = make();
        restored.restore_position(&position).unwrap();
        let rest = drain(restored.as_mut());
        assert_eq!(
            rest,
            drain(first.as_mut()),
            "restored after {k} of {} batches",
            whole.len()
        );
        assert_eq!(
            rest,
            whole[k..],
            "restored after {k} of {} batches",
            whole.len()
        );
    }
    whole.len()
}

fn keyed_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// Two files of 20,000 lines: two workers' shares are more than one
/// decoding unit (8192 lines) each.
fn write_inputs(dir: &Path, line: impl Fn(i64) -> String) {
    for (file, keys) in [("a", 0..20_000), ("b", 20_000..40_000)] {
        let text: String = keys.map(|k| line(k) + "\n").collect();
        std::fs::write(dir.join(file), text).unwrap();
    }
}

fn file_source(dir: &Path, pairs: &[(&str, &str)]) -> FileSource {
    let mut all = vec![("path", dir.to_str().unwrap())];
    all.extend_from_slice(pairs);
    FileSource::new(&options(&all), keyed_schema()).unwrap()
}

fn keys(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn a_file_reader_resumes_at_its_byte_offset_in_csv_and_json() {
    let _checkpointed = Checkpointed::install(None);
    let csv = tempfile::tempdir().unwrap();
    // A bad line, retried line by line, makes the decoder split its unit
    // into a batch per line.
    write_inputs(csv.path(), |k| match k {
        5_000 => "five thousand,name".to_string(),
        k => format!("{k},name-{k}"),
    });
    let json = tempfile::tempdir().unwrap();
    write_inputs(json.path(), |k| {
        format!("{{\"k\": {k}, \"name\": \"name-{k}\"}}")
    });
    let sources = [
        (
            file_source(
                csv.path(),
                &[("format", "csv"), ("csv.ignore-parse-errors", "true")],
            ),
            39_999,
        ),
        (file_source(json.path(), &[("format", "json")]), 40_000),
    ];
    for (source, expected) in sources {
        let mut all = Vec::new();
        for worker in 0..2 {
            let batches = resumes_exactly(&|| source.reader(worker, 2).unwrap());
            // Two units of each file per worker, each given as one batch (the
            // bad line's unit too).
            assert_eq!(batches, 4);
            all.extend(keys(&drain(source.reader(worker, 2).unwrap().as_mut())));
        }
        all.sort();
        all.dedup();
        assert_eq!(all.len(), expected);
    }
}

#[test]
fn a_file_reader_position_lists_only_what_is_left() {
    let _checkpointed = Checkpointed::install(None);
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), |k| format!("{k},name-{k}"));
    let source = file_source(dir.path(), &[("format", "csv")]);
    let mut reader = source.reader(0, 1).unwrap();
    drain(reader.as_mut());
    let done = reader.checkpoint_position().unwrap().unwrap();
    let mut restored = source.reader(0, 1).unwrap();
    restored.restore_position(&done).unwrap();
    assert!(matches!(restored.poll().unwrap(), Poll::Done));
    assert!(
        source
            .reader(0, 1)
            .unwrap()
            .restore_position(&done[..done.len() - 1])
            .is_err()
    );
}

#[test]
fn datagen_resumes_its_sequence_and_its_random_values() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Int32, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    let generator = Datagen::new(
        &options(&[
            ("rows-per-second", "0"),
            ("fields.id.kind", "sequence"),
            ("fields.id.start", "1"),
            ("fields.id.end", "40000"),
            ("fields.s.length", "8"),
        ]),
        schema,
    )
    .unwrap();
    assert!(generator.checkpointable());
    for worker in 0..2 {
        let batches = resumes_exactly(&|| generator.reader(worker, 2).unwrap());
        assert!(batches > 2);
    }
    // Another worker's position would repeat or skip rows.
    let mut first = generator.reader(0, 2).unwrap();
    first.poll().unwrap();
    let position = first.checkpoint_position().unwrap().unwrap();
    assert!(
        generator
            .reader(1, 2)
            .unwrap()
            .restore_position(&position)
            .is_err()
    );
}

#[test]
fn nexmark_resumes_inside_a_block_of_batches_by_kind() {
    let generator = Nexmark::from_pairs(&[("events.num", "30000")]).unwrap();
    assert!(generator.checkpointable());
    for worker in 0..2 {
        let batches = resumes_exactly(&|| {
            Box::new(generator.events_by_kind(worker, 2)) as Box<dyn BatchReader>
        });
        // Three kinds per block: positions inside a block are covered.
        assert!(batches >= 6, "{batches}");
    }
    let mut whole = 0;
    for worker in 0..2 {
        whole += rows(&drain(&mut generator.events_by_kind(worker, 2)));
    }
    assert_eq!(whole, 30_000);
}

fn partitioned_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("p", DataType::Utf8, false),
    ]))
}

fn rows_of(keys: std::ops::Range<i64>) -> RecordBatch {
    let parts: Vec<&str> = keys
        .clone()
        .map(|k| if k % 2 == 0 { "even" } else { "odd" })
        .collect();
    RecordBatch::try_new(
        partitioned_schema(),
        vec![
            Arc::new(Int64Array::from(keys.collect::<Vec<_>>())),
            Arc::new(StringArray::from(parts)),
        ],
    )
    .unwrap()
}

fn file_sink(dir: &Path, partitioned: bool) -> FileSink {
    let mut pairs = vec![("path", dir.to_str().unwrap()), ("format", "csv")];
    if partitioned {
        pairs.push((PARTITION_KEYS, "p"));
    }
    FileSink::new(&options(&pairs), &partitioned_schema()).unwrap()
}

/// Every file under `dir`, relative, sorted; hidden ones too.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn visible(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| !f.rsplit('/').next().unwrap().starts_with('.'))
        .collect()
}

/// The keys in the committed part files, sorted.
fn committed_keys(dir: &Path) -> Vec<i64> {
    let mut keys: Vec<i64> = visible(dir)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .lines()
                .map(|line| line.split(',').next().unwrap().parse().unwrap())
                .collect::<Vec<i64>>()
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn the_file_sink_shows_a_part_only_once_its_checkpoint_completes() {
    let _checkpointed = Checkpointed::install(None);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let provider = file_sink(&out, false);
    assert!(provider.checkpointable());
    let mut sink = provider.sink(0, 1).unwrap();
    sink.write(rows_of(0..10), 0).unwrap();
    assert_eq!(visible(&out), Vec::<String>::new());
    assert!(sink.checkpoint_output(1).unwrap().is_empty());
    // End of input changes nothing: the last checkpoint commits.
    sink.watermark(None).unwrap();
    assert_eq!(visible(&out), Vec::<String>::new());
    assert_eq!(files(&out), [".part-0-0.csv.inprogress"]);
    sink.checkpoint_complete(1).unwrap();
    assert_eq!(visible(&out), ["part-0-0.csv"]);
    assert_eq!(committed_keys(&out), (0..10).collect::<Vec<_>>());

    // A checkpoint with no rows since the last makes no file.
    sink.checkpoint_output(2).unwrap();
    sink.checkpoint_complete(2).unwrap();
    sink.write(rows_of(10..15), 0).unwrap();
    sink.checkpoint_output(3).unwrap();
    sink.write(rows_of(15..20), 0).unwrap();
    sink.checkpoint_output(4).unwrap();
    // Completing 4 commits 3's file too.
    sink.checkpoint_complete(4).unwrap();
    assert_eq!(
        files(&out),
        ["part-0-0.csv", "part-0-1.csv", "part-0-2.csv"]
    );
    assert_eq!(committed_keys(&out), (0..20).collect::<Vec<_>>());
}

#[test]
fn a_restored_file_sink_commits_what_the_crash_left_pending_and_deletes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let provider = file_sink(&out, true);
    let state = {
        let _checkpointed = Checkpointed::install(None);
        let mut sink = provider.committing(0).unwrap();
        use runnel_engine::sink::BatchSink;
        sink.write(rows_of(0..10), 0).unwrap();
        sink.checkpoint_output(1).unwrap();
        // The engine snapshots right after `checkpoint_output`.
        let state = sink.snapshot().unwrap();
        // Written after checkpoint 1; the crash comes before checkpoint 2
        // and before checkpoint 1's rename.
        sink.write(rows_of(10..14), 0).unwrap();
        state
    };
    std::fs::write(
        out.join("p=odd/.part-1-0.csv.inprogress"),
        "another worker's\n",
    )
    .unwrap();
    assert_eq!(visible(&out), Vec::<String>::new());
    assert_eq!(
        files(&out),
        [
            "p=even/.part-0-0.csv.inprogress",
            "p=even/.part-0-2.csv.inprogress",
            "p=odd/.part-0-1.csv.inprogress",
            "p=odd/.part-0-3.csv.inprogress",
            "p=odd/.part-1-0.csv.inprogress",
        ]
    );

    let _checkpointed = Checkpointed::install(Some(vec![(format!("{STATE_KIND}#0"), state)]));
    let mut sink = provider.sink(0, 1).unwrap();
    assert_eq!(
        files(&out),
        [
            "p=even/part-0-0.csv",
            "p=odd/.part-1-0.csv.inprogress",
            "p=odd/part-0-1.csv",
        ]
    );
    assert_eq!(committed_keys(&out), (0..10).collect::<Vec<_>>());
    // The restored job reads from checkpoint 1's position again.
    sink.write(rows_of(10..14), 0).unwrap();
    sink.checkpoint_output(2).unwrap();
    sink.checkpoint_complete(2).unwrap();
    assert_eq!(
        visible(&out),
        [
            "p=even/part-0-0.csv",
            "p=even/part-0-2.csv",
            "p=odd/part-0-1.csv",
            "p=odd/part-0-3.csv",
        ]
    );
    assert_eq!(committed_keys(&out), (0..14).collect::<Vec<_>>());
}

#[test]
fn part_numbers_skip_files_already_committed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // A committed file the state does not know of (a job started afresh).
    std::fs::write(out.join("part-0-0.csv"), "100,x\n").unwrap();
    let _checkpointed = Checkpointed::install(None);
    let mut sink = file_sink(&out, false).sink(0, 1).unwrap();
    sink.write(rows_of(0..3), 0).unwrap();
    sink.checkpoint_output(1).unwrap();
    sink.checkpoint_complete(1).unwrap();
    assert_eq!(files(&out), ["part-0-0.csv", "part-0-1.csv"]);
    assert_eq!(committed_keys(&out), [0, 1, 2, 100]);
}

#[test]
fn without_checkpoints_the_sink_writes_one_part_file_per_worker() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut sink = file_sink(&out, false).sink(1, 2).unwrap();
    sink.write(rows_of(0..4), 0).unwrap();
    sink.watermark(None).unwrap();
    assert_eq!(files(&out), ["part-1.csv"]);
    assert_eq!(committed_keys(&out), [0, 1, 2, 3]);
}

#[test]
fn a_checkpoint_finishes_a_parquet_part_so_that_it_reads_back_whole() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let provider = FileSink::new(
        &options(&[("path", out.to_str().unwrap()), ("format", "parquet")]),
        &partitioned_schema(),
    )
    .unwrap();
    let _checkpointed = Checkpointed::install(None);
    let mut sink = provider.sink(0, 1).unwrap();
    sink.write(rows_of(0..5), 0).unwrap();
    sink.write(rows_of(5..8), 0).unwrap();
    sink.checkpoint_output(1).unwrap();
    sink.checkpoint_complete(1).unwrap();
    assert_eq!(files(&out), ["part-0-0.parquet"]);
    let file = std::fs::File::open(out.join("part-0-0.parquet")).unwrap();
    let read: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys(&read), (0..8).collect::<Vec<_>>());
}
