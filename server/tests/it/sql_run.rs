//! `runnel sql run` as a user runs it: a script file in, printed rows out.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::{free_port, runnel_bin};

fn bids_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("bids.jsonl");
    let mut text = String::new();
    // 3 auctions, 60 bids over a minute, in event-time order.
    for i in 0..60 {
        text.push_str(&format!(
            "{{\"auction\": {}, \"price\": {}, \"date_time\": \"2020-04-15 08:00:{i:02}.000\"}}\n",
            i % 3,
            i * 7 % 100
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn script(dir: &Path, query: &str) -> std::path::PathBuf {
    let bids = bids_file(dir);
    let path = dir.join("job.sql");
    std::fs::write(
        &path,
        format!(
            "-- a comment\nCREATE TABLE bids (auction BIGINT, price BIGINT, date_time TIMESTAMP(3),\n  \
             WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND\n) WITH ('connector' = 'filesystem', \
             'path' = '{}', 'format' = 'json');\n{query}\n",
            bids.display()
        ),
    )
    .unwrap();
    path
}

const TUMBLE: &str = "SELECT window_start, auction, COUNT(*), SUM(price) \
    FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) \
    GROUP BY window_start, window_end, auction;";

fn run(args: &[&str]) -> Output {
    Command::new(runnel_bin())
        .args(args)
        .output()
        .expect("run runnel")
}

/// Printed rows without the `N> ` worker prefix, sorted. Nothing but rows
/// may be on stdout.
fn rows(output: &Output) -> Vec<String> {
    let mut rows: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.split_once("> ").map_or(l, |(_, row)| row).to_string())
        .collect();
    for row in &rows {
        assert!(row.starts_with("+I["), "not a row on stdout: {row:?}");
    }
    rows.sort();
    rows
}

#[test]
fn a_windowed_job_prints_every_window_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = script(dir.path(), TUMBLE);
    let output = run(&["sql", "run", "--file", file.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = rows(&output);
    assert_eq!(rows.len(), 18, "{rows:?}");
    assert!(
        rows.contains(&"+I[2020-04-15T08:00, 0, 4, 126]".to_string()),
        "{rows:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("records in 60, out 18, late 0, watermark end of input"),
        "{stderr}"
    );
}

#[test]
fn workers_do_not_change_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let file = script(dir.path(), TUMBLE);
    let one = run(&["sql", "run", "-q", "--file", file.to_str().unwrap()]);
    let three = run(&[
        "sql",
        "run",
        "-q",
        "--workers",
        "3",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(
        three.status.success(),
        "{}",
        String::from_utf8_lossy(&three.stderr)
    );
    assert_eq!(rows(&one), rows(&three));
}

#[test]
fn two_processes_on_loopback_give_the_single_process_answer() {
    let dir = tempfile::tempdir().unwrap();
    let file = script(dir.path(), TUMBLE);
    // A port found free can be taken by a parallel test before the cluster
    // binds it; that attempt fails with "cannot listen" and is retried.
    for _attempt in 0..3 {
        if let Some(combined) = run_cluster(dir.path(), &file) {
            let single = run(&["sql", "run", "-q", "--file", file.to_str().unwrap()]);
            assert_eq!(combined, rows(&single));
            return;
        }
    }
    panic!("no free ports for the cluster in 3 attempts");
}

/// The sorted rows of both processes, or `None` if a port was taken.
fn run_cluster(dir: &Path, file: &Path) -> Option<Vec<String>> {
    let hosts = dir.join("hosts.txt");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .unwrap();
    let spawn = |id: &str| {
        Command::new(runnel_bin())
            .args([
                "sql",
                "run",
                "-q",
                "--workers",
                "2",
                "--processes",
                "2",
                "--process-id",
                id,
                "--hosts",
            ])
            .arg(&hosts)
            .arg("--file")
            .arg(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children = vec![spawn("0"), spawn("1")];
    // One process failing (a port taken) leaves the other waiting for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let statuses: Vec<_> = children.iter_mut().map(|c| c.try_wait().unwrap()).collect();
        if statuses.iter().all(Option::is_some) {
            break;
        }
        if statuses.iter().flatten().any(|s| !s.success()) {
            for child in &mut children {
                let _ = child.kill();
            }
            break;
        }
        if std::time::Instant::now() >= deadline {
            for child in &mut children {
                let _ = child.kill();
            }
            panic!("cluster job did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut combined: Vec<String> = Vec::new();
    let mut outputs = Vec::new();
    for child in children {
        outputs.push(child.wait_with_output().unwrap());
    }
    for output in &outputs {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("cannot listen") {
            return None;
        }
        assert!(output.status.success(), "{stderr}");
        combined.extend(rows(output));
    }
    combined.sort();
    Some(combined)
}

#[test]
fn an_unsupported_construct_fails_at_submit_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = script(
        dir.path(),
        "SELECT auction, price FROM bids\nORDER BY price;",
    );
    let output = run(&["sql", "run", "--file", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ORDER BY on a stream must begin with an event-time attribute ascending")
            && stderr.contains("at line 6, column 1"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn explain_prints_the_dataflow() {
    let dir = tempfile::tempdir().unwrap();
    let file = script(dir.path(), &format!("EXPLAIN {TUMBLE}"));
    let output = run(&["sql", "run", "--file", file.to_str().unwrap()]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("WindowAggregate: TUMBLE(10000 ms)"), "{text}");
    assert!(
        text.contains("Source: bids[filesystem], watermark date_time - 2000 ms"),
        "{text}"
    );
}

#[test]
fn processing_time_windows_count_every_row_in_the_current_hour() {
    let dir = tempfile::tempdir().unwrap();
    let bids = bids_file(dir.path());
    let file = dir.path().join("proctime.sql");
    std::fs::write(
        &file,
        format!(
            "CREATE TABLE bids (auction BIGINT, price BIGINT, proc AS PROCTIME()) \
             WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n\
             SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(proc), INTERVAL '1' HOUR)) \
             GROUP BY window_start, window_end;\n",
            bids.display()
        ),
    )
    .unwrap();
    let output = run(&[
        "sql",
        "run",
        "-q",
        "--workers",
        "2",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = rows(&output);
    // Normally one window; two if the run straddles the top of an hour.
    assert!((1..=2).contains(&rows.len()), "{rows:?}");
    let total: u64 = rows
        .iter()
        .map(|r| {
            r.trim_end_matches(']')
                .rsplit(", ")
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(total, 60, "{rows:?}");
}

/// Ctrl-C on an unbounded job ends it like end of input: the open windows
/// fire, the rows are printed and the process exits 0.
#[test]
fn ctrl_c_ends_an_unbounded_job_and_fires_its_windows() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.sql");
    std::fs::write(
        &file,
        "CREATE TABLE gen (k BIGINT, ts AS PROCTIME()) WITH ('connector' = 'datagen', \
           'rows-per-second' = '100', 'fields.k.min' = '0', 'fields.k.max' = '0');
         SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE gen, DESCRIPTOR(ts), INTERVAL '1' HOUR)) \
           GROUP BY window_start, window_end, k;",
    )
    .unwrap();
    let mut child = Command::new(runnel_bin())
        .args(["sql", "run", "-q", "--file"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    crate::harness::signal(child.id(), "INT");
    let status = crate::harness::wait_bounded(&mut child, Duration::from_secs(20));
    if status.is_none() {
        let _ = child.kill();
        panic!("the job did not end within 20 s of Ctrl-C");
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = rows(&output);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with("+I[0, "), "{rows:?}");
}

/// A Nexmark job paced at 20,000 events/s into a filesystem sink, with
/// checkpoints every 200 ms in `--checkpoint-dir`.
fn checkpointed_script(dir: &Path, out: &Path) -> std::path::PathBuf {
    paced_script(dir, out, 20_000, 60_000, 4)
}

/// As `checkpointed_script`, at `rate` events/s, with a watermark
/// `lag_s` seconds behind the bids (windows fire that long after they
/// end).
fn paced_script(dir: &Path, out: &Path, rate: u64, events: u64, lag_s: u64) -> std::path::PathBuf {
    let ddl = paced_nexmark(rate, events, lag_s);
    let path = dir.join("job.sql");
    std::fs::write(
        &path,
        format!(
            "SET 'execution.checkpointing.interval' = '200 ms';\n{ddl}\n\
             CREATE TABLE per_second (window_start TIMESTAMP(3), bids BIGINT, total BIGINT, top BIGINT)\n\
             WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n\
             INSERT INTO per_second SELECT window_start, COUNT(*), SUM(price), MAX(price)\n\
             FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '1' SECOND))\n\
             GROUP BY window_start, window_end;\n",
            out.display()
        ),
    )
    .unwrap();
    path
}

/// The rows of every committed part file under `dir`, sorted; a file still
/// in progress is hidden and not read.
fn committed_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("part-") {
            rows.extend(
                std::fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    .map(str::to_string),
            );
        }
    }
    rows.sort();
    rows
}

/// `runnel sql run` of `script` on 2 workers, checkpointing into
/// `checkpoints`, stderr piped.
fn checkpointed_command(script: &Path, checkpoints: &Path, resume: bool) -> Command {
    let mut command = Command::new(runnel_bin());
    command
        .args(["sql", "run", "--quiet", "--workers", "2", "--file"])
        .arg(script)
        .arg("--checkpoint-dir")
        .arg(checkpoints)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        command.arg("--from-checkpoint");
    }
    command
}

fn run_checkpointed(script: &Path, checkpoints: &Path, resume: bool, kill_after: Option<Duration>) {
    let mut child = checkpointed_command(script, checkpoints, resume)
        .spawn()
        .unwrap();
    match kill_after {
        Some(delay) => {
            std::thread::sleep(delay);
            child.kill().unwrap();
            child.wait().unwrap();
        }
        None => {
            let status = crate::harness::wait_bounded(&mut child, Duration::from_secs(120))
                .expect("the job ends within 2 minutes");
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert!(status.success(), "{stderr}");
        }
    }
}

/// Nexmark's tables generated at `rate` events/s (paced), `events` of them,
/// the watermark `lag_s` seconds behind the bids.
fn paced_nexmark(rate: u64, events: u64, lag_s: u64) -> String {
    include_str!("../../../benches/nexmark/ddl.sql")
        .replace("${TPS}", &rate.to_string())
        .replace("${EVENTS_NUM}", &events.to_string())
        .replace(
            "dateTime - INTERVAL '4' SECOND",
            &format!("dateTime - INTERVAL '{lag_s}' SECOND"),
        )
        .replace(
            "'connector' = 'nexmark',",
            "'connector' = 'nexmark', 'rate.limited' = 'true',",
        )
}

/// The committed rows of the script `make` writes, run once in one
/// process and never killed.
fn uninterrupted_rows(make: impl Fn(&Path, &Path) -> std::path::PathBuf) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reference");
    let script = make(dir.path(), &out);
    run_checkpointed(&script, &dir.path().join("checkpoints"), false, None);
    let rows = committed_rows(&out);
    assert!(rows.len() >= 3, "{rows:?}");
    rows
}

/// Nexmark's q20 (every bid with its category-10 auction: a regular join,
/// whose state keeps every row of both sides) paced at 50,000 events/s,
/// checkpointed every 500 ms: its states grow past `state_files`'s
/// threshold, so checkpoints mix states in files and inline deltas.
fn joined_script(dir: &Path, out: &Path) -> std::path::PathBuf {
    let ddl = paced_nexmark(50_000, 150_000, 4);
    let path = dir.join("job.sql");
    std::fs::write(
        &path,
        format!(
            "SET 'execution.checkpointing.interval' = '500 ms';\n{ddl}\n\
             CREATE TABLE joined (auction BIGINT, bidder BIGINT, price BIGINT, url VARCHAR,\n\
             extra VARCHAR, itemName VARCHAR, description VARCHAR, seller BIGINT)\n\
             WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n\
             INSERT INTO joined SELECT auction, bidder, price, url, B.extra, itemName, description, seller\n\
             FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id WHERE A.category = 10;\n",
            out.display()
        ),
    )
    .unwrap();
    path
}

/// The checkpoint states `runnel sql run --checkpoint-dir` keeps in files.
fn state_files(checkpoints: &Path) -> usize {
    let Ok(jobs) = std::fs::read_dir(checkpoints.join("jobs/checkpoints")) else {
        return 0;
    };
    jobs.flatten()
        .flat_map(|job| std::fs::read_dir(job.path()).into_iter().flatten())
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().ends_with(".state"))
        .count()
}

/// A run to be killed: its script, output and checkpoint dirs, and a seed
/// for the moments of the kills.
struct CrashRun {
    dir: tempfile::TempDir,
    script: std::path::PathBuf,
    out: std::path::PathBuf,
    checkpoints: std::path::PathBuf,
    seed: u64,
}

impl CrashRun {
    fn new(make: impl Fn(&Path, &Path) -> std::path::PathBuf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = make(dir.path(), &out);
        let checkpoints = dir.path().join("checkpoints");
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_millis() as u64;
        CrashRun {
            dir,
            script,
            out,
            checkpoints,
            seed,
        }
    }
}

/// Runs the script `make` writes, killed with `kill -9` after `first` and
/// again after `second` (each milliseconds and a random spread added to
/// them), then to its end, each run resuming from the checkpoints;
/// `after_first` looks at the checkpoint dir after the first kill. Checks
/// that the part files' rows are those of a run never killed.
fn killed_twice_gives_the_rows_of_one_never_killed(
    make: fn(&Path, &Path) -> std::path::PathBuf,
    first: (u64, u64),
    second: (u64, u64),
    after_first: impl Fn(&Path),
) {
    let expected = uninterrupted_rows(make);
    let CrashRun {
        dir: _crashed_dir,
        script,
        out,
        checkpoints,
        seed,
    } = CrashRun::new(make);
    let after = |(at, spread): (u64, u64)| Some(Duration::from_millis(at + seed % spread));
    run_checkpointed(&script, &checkpoints, false, after(first));
    after_first(&checkpoints);
    run_checkpointed(&script, &checkpoints, true, after(second));
    run_checkpointed(&script, &checkpoints, true, None);
    assert_eq!(committed_rows(&out), expected, "seed {seed}");
}

/// `runnel sql run --checkpoint-dir` killed with `kill -9` twice and run
/// again with `--from-checkpoint` commits exactly the part files' rows of a
/// run never killed.
#[test]
fn sql_run_killed_twice_resumes_from_its_checkpoints_into_files() {
    killed_twice_gives_the_rows_of_one_never_killed(
        checkpointed_script,
        (600, 900),
        (400, 700),
        |_| {},
    );
}

/// Both processes of a checkpointed two-process job, each with its share
/// of the checkpoints under `checkpoints/process-<i>`.
fn spawn_checkpointed_cluster(
    dir: &Path,
    script: &Path,
    checkpoints: &Path,
    resume: bool,
) -> Vec<std::process::Child> {
    let hosts = dir.join("hosts.txt");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .unwrap();
    (0..2)
        .map(|id| {
            checkpointed_command(script, checkpoints, resume)
                .args([
                    "--processes",
                    "2",
                    "--process-id",
                    &id.to_string(),
                    "--hosts",
                ])
                .arg(&hosts)
                .spawn()
                .unwrap()
        })
        .collect()
}

fn stderr_of(child: &mut std::process::Child) -> String {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    stderr
}

/// A two-process job with checkpoints: one process killed with `kill -9`
/// takes the other down with it (it fails, it does not hang), both resume
/// from the newest checkpoint both completed, and the part files end with
/// exactly the rows of a single-process run never killed. Windows fire
/// as the job runs, so files committed before a kill would be written
/// again by a job that started afresh instead of resuming.
#[test]
fn a_two_process_job_killed_resumes_both_processes_from_their_checkpoints() {
    let paced = |dir: &Path, out: &Path| paced_script(dir, out, 10_000, 100_000, 1);
    let expected = uninterrupted_rows(paced);
    let CrashRun {
        dir: crashed_dir,
        script,
        out,
        checkpoints,
        seed,
    } = CrashRun::new(paced);
    // Each run's victim alternates; the survivor must end by itself.
    for (run, (victim, delay)) in [(1, 5500 + seed % 1500), (0, 1000 + seed % 1000)]
        .into_iter()
        .enumerate()
    {
        let mut children =
            spawn_checkpointed_cluster(crashed_dir.path(), &script, &checkpoints, run > 0);
        std::thread::sleep(Duration::from_millis(delay));
        let ended_before = children[victim].try_wait().unwrap().is_some();
        children[victim].kill().unwrap();
        children[victim].wait().unwrap();
        let survivor = &mut children[1 - victim];
        let status = crate::harness::wait_bounded(survivor, Duration::from_secs(30));
        let stderr = stderr_of(survivor);
        let Some(status) = status else {
            let _ = survivor.kill();
            panic!(
                "run {run}: process {} outlived process {victim} by 30 s: {stderr}",
                1 - victim
            );
        };
        assert!(
            ended_before || !status.success(),
            "run {run}, seed {seed}: the survivor succeeded without its peer: {stderr}"
        );
    }
    let before_resume = committed_rows(&out);
    assert!(
        !before_resume.is_empty() && before_resume.len() < expected.len(),
        "seed {seed}: the kills came before any file was committed or after the last: {before_resume:?}"
    );
    let mut children = spawn_checkpointed_cluster(crashed_dir.path(), &script, &checkpoints, true);
    for (id, child) in children.iter_mut().enumerate() {
        let status = crate::harness::wait_bounded(child, Duration::from_secs(120));
        let stderr = stderr_of(child);
        assert_eq!(
            status.map(|s| s.success()),
            Some(true),
            "process {id}, seed {seed}: {stderr}"
        );
    }
    assert_eq!(committed_rows(&out), expected, "seed {seed}");
}

/// A job whose join state outgrows RocksDB values (kept in state files)
/// killed with `kill -9` twice: it resumes from those files and commits
/// exactly the rows of a run never killed.
#[test]
fn a_join_whose_state_is_in_files_resumes_after_kill_9() {
    killed_twice_gives_the_rows_of_one_never_killed(
        joined_script,
        (1600, 600),
        (1200, 600),
        |checkpoints| {
            assert!(
                state_files(checkpoints) > 0,
                "no checkpoint state reached a file; the test no longer covers them"
            );
        },
    );
}

/// TIME columns read from JSON and CSV files and written back as Flink's
/// formats write them; a TIME(0) JSON value with a fraction fails the job
/// with its reason (Runnel's TIME(0) holds whole seconds).
#[test]
fn time_columns_round_trip_through_json_and_csv_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("times.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"t0\": \"12:13:14\", \"t3\": \"12:13:14.567\"}\n\
         {\"id\": 2, \"t0\": \"00:00:00\", \"t3\": \"23:59:59.9\"}\n\
         {\"id\": 3, \"t0\": null, \"t3\": null}\n",
    )
    .unwrap();
    let (json_out, csv_out) = (dir.path().join("json-out"), dir.path().join("csv-out"));
    let script = dir.path().join("job.sql");
    let ddl = |name: &str, path: &Path, format: &str| {
        format!(
            "CREATE TABLE {name} (id INT, t0 TIME, t3 TIME(3)) WITH ('connector' = 'filesystem', \
             'path' = '{}', 'format' = '{format}');\n",
            path.display()
        )
    };
    std::fs::write(
        &script,
        format!(
            "{}{}{}EXECUTE STATEMENT SET BEGIN\n\
             INSERT INTO j SELECT id, t0 + INTERVAL '1' HOUR, t3 FROM times;\n\
             INSERT INTO c SELECT id, t0, CAST(t3 AS TIME(3)) FROM times;\nEND;\n",
            ddl("times", &input, "json"),
            ddl("j", &json_out, "json"),
            ddl("c", &csv_out, "csv"),
        ),
    )
    .unwrap();
    let output = run(&["sql", "run", "--file", script.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        committed_rows(&json_out),
        [
            "{\"id\":1,\"t0\":\"13:13:14\",\"t3\":\"12:13:14.567\"}",
            "{\"id\":2,\"t0\":\"01:00:00\",\"t3\":\"23:59:59.9\"}",
            "{\"id\":3,\"t0\":null,\"t3\":null}",
        ]
    );
    assert_eq!(
        committed_rows(&csv_out),
        ["1,12:13:14,12:13:14.567", "2,00:00:00,23:59:59.9", "3,,"]
    );

    // The csv files read back as the same times.
    let again = dir.path().join("again.sql");
    std::fs::write(
        &again,
        format!("{}SELECT id, t0, t3 FROM c;\n", ddl("c", &csv_out, "csv")),
    )
    .unwrap();
    let output = run(&["sql", "run", "--file", again.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        rows(&output),
        [
            "+I[1, 12:13:14, 12:13:14.567]",
            "+I[2, 00:00, 23:59:59.900]",
            "+I[3, null, null]"
        ]
    );

    std::fs::write(
        &input,
        "{\"id\": 4, \"t0\": \"08:30:00.750\", \"t3\": \"08:30:00\"}\n",
    )
    .unwrap();
    let select = dir.path().join("select.sql");
    std::fs::write(
        &select,
        format!("{}SELECT * FROM times;\n", ddl("times", &input, "json")),
    )
    .unwrap();
    let output = run(&["sql", "run", "--file", select.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("'08:30:00.750' is not a TIME(0)"),
        "{stderr}"
    );
}
