use crate::harness::runnel_bin;

fn help(args: &[&str]) -> String {
    let output = std::process::Command::new(runnel_bin())
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "runnel {args:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn top_level_help_lists_the_subcommands() {
    let text = help(&["--help"]);
    assert!(text.contains("server"), "{text}");
}

#[test]
fn server_help_explains_every_setting_and_the_precedence() {
    let text = help(&["server", "--help"]);
    for flag in [
        "--port",
        "--listen",
        "--data-dir",
        "--config",
        "--log-format",
    ] {
        assert!(text.contains(flag), "missing {flag}: {text}");
    }
    assert!(text.contains("RUNNEL_PORT"), "{text}");
    assert!(text.contains("precedence"), "{text}");
}

#[test]
fn sql_run_help_explains_the_job_and_the_cluster_flags() {
    let text = help(&["sql", "run", "--help"]);
    for flag in [
        "--file",
        "--workers",
        "--processes",
        "--process-id",
        "--hosts",
    ] {
        assert!(text.contains(flag), "missing {flag}: {text}");
    }
    assert!(text.contains("exits 0"), "{text}");
}
