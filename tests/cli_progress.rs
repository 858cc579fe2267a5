//! What `kn-sock send-file` shows while it works: the progress bar (forced, default, off), and
//! the reason a receiver gives when it stops in the middle of a transfer.

mod common;

use common::cli::*;
use common::*;

/// `--show-progress` draws the bar even when stderr is a pipe, and ends its line, so the result
/// line is not glued to it; without it a pipe gets no bar, and `--no-progress` turns it off.
#[test]
fn show_progress_forces_the_bar_and_ends_its_line() {
    let out = tempfile::tempdir().unwrap();
    let mut srv = CliServer::start(out.path(), &[]);
    let src = tempfile::tempdir().unwrap();
    let f = write_file(src.path(), "bar.bin", &random_bytes(300_000, 5));
    let f = f.to_str().unwrap();

    let r = send(srv.port, &[f, "--show-progress"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let err = text(&r.stderr);
    assert!(
        err.contains("bar.bin [==============================]"),
        "no finished bar: {err:?}"
    );
    assert!(err.ends_with('\n'), "the bar's line is not ended: {err:?}");
    assert!(srv.next_line().starts_with("received bar.bin"));

    for quiet in [&[f][..], &[f, "--show-progress", "--no-progress"][..]] {
        let r = send(srv.port, quiet);
        assert!(r.status.success(), "{}", text(&r.stderr));
        assert_eq!(text(&r.stderr), "", "{quiet:?}");
        assert!(srv.next_line().starts_with("received bar.bin"));
    }
    assert!(srv.terminate().success());
}
