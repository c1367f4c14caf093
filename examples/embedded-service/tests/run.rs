//! Runs the example as a user would and checks what it prints.

use std::process::Command;

#[test]
fn the_example_runs_and_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_embedded-service"))
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for node in ["node-1", "node-2"] {
        assert!(
            stdout.contains(&format!("{node} saw config/colour = blue from node-0")),
            "{stdout}"
        );
    }
    assert_eq!(stdout.matches(" is alive").count(), 3, "{stdout}");
    assert!(stdout.ends_with("all three nodes left\n"), "{stdout}");
}
